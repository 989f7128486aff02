"""Backend metrics on the collector's /metrics: every tracked metric of every target, named from its kind's catalog.

`hulk_ops_<kind>_<prom>` in base units (the catalog's `scale` applied), labelled `target` plus the catalog key's
`<label>` segments (`consumer.<stream>.<consumer>.pending` -> `hulk_ops_nats_consumer_pending{target, stream,
consumer}`). Values are read from each job's newest result when Prometheus scrapes (on the HTTP server's thread),
so probing pays nothing for the export. A result older than three intervals (a target no longer probed here: a
sharding handover, an open breaker) is left out. At most `max_series` series are exported; the excess is dropped
and counted in `hulk_ops_export_series_dropped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.model import ProbeResult

STALE_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One target's newest result as the export sees it."""

    target: str
    kind: str
    result: ProbeResult | None
    age_s: float  # since the result was recorded
    interval_s: float


def job_samples(jobs: Callable[[], Iterable[object]]) -> Callable[[], list[Sample]]:
    """Samples from the scheduler's jobs (`settings`, `last_result`, `last_run_at` in time.monotonic())."""

    def read() -> list[Sample]:
        now = time.monotonic()
        for _attempt in range(3):  # a config reload may swap the job list while the scrape copies it
            try:
                current = list(jobs())
                break
            except RuntimeError:
                continue
        else:
            return []
        out = []
        for job in current:
            settings = job.settings  # type: ignore[attr-defined]
            last = getattr(job, "last_run_at", None)
            out.append(Sample(settings.name, settings.kind, getattr(job, "last_result", None),
                              now - last if last is not None else float("inf"), settings.interval_s))
        return out

    return read


class BackendMetrics(Collector):
    def __init__(self, samples: Callable[[], list[Sample]], catalog: Callable[[str], Catalog | None],
                 tracked: Callable[[str], Callable[[str], bool]], max_series: int = 50_000) -> None:
        self.samples = samples
        self.catalog = catalog
        self.tracked = tracked
        self.max_series = max_series
        self._kinds: dict[str, tuple[Catalog | None, Callable[[str], bool]]] = {}
        self._specs: dict[tuple[str, str], tuple[MetricSpec, tuple[str, ...]] | None] = {}

    def describe(self) -> list[Metric]:
        return []  # the families depend on the targets: registering must not call collect()

    def _kind(self, kind: str) -> tuple[Catalog | None, Callable[[str], bool]]:
        found = self._kinds.get(kind)
        if found is None:
            try:
                found = (self.catalog(kind), self.tracked(kind))
            except LookupError:  # a kind gone from the registry (a plugin uninstalled before a reload)
                found = (None, lambda _name: False)
            self._kinds[kind] = found
        return found

    def _spec(self, kind: str, key: str, catalog: Catalog) -> tuple[MetricSpec, tuple[str, ...]] | None:
        found = self._specs.get((kind, key), False)
        if found is False:
            hit = catalog.lookup(key)
            found = (hit[0], tuple(hit[1][label] for label in hit[0].labels)) if hit else None
            if len(self._specs) < 200_000:
                self._specs[(kind, key)] = found
        return found  # type: ignore[return-value]

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        exported = dropped = 0
        for sample in self.samples():
            result = sample.result
            if result is None or not result.metrics or sample.age_s > STALE_INTERVALS * sample.interval_s:
                continue
            catalog, tracked = self._kind(sample.kind)
            if catalog is None:
                continue
            for key, value in result.metrics.items():
                if not tracked(key):
                    continue
                found = self._spec(sample.kind, key, catalog)
                if found is None:
                    continue
                if exported >= self.max_series:
                    dropped += 1
                    continue
                spec, label_values = found
                name = f"hulk_ops_{sample.kind}_{spec.prom}"
                family = families.get(name)
                if family is None:
                    family_type = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
                    family = families[name] = family_type(name, spec.help, labels=("target", *spec.labels))
                family.add_metric((sample.target, *label_values), float(value) * spec.scale)
                exported += 1
        yield from families.values()
        size = GaugeMetricFamily("hulk_ops_export_series", "Backend metric series exported in this scrape")
        size.add_metric((), exported)
        yield size
        lost = GaugeMetricFamily("hulk_ops_export_series_dropped",
                                 "Backend metric series left out of this scrape by export.max_series")
        lost.add_metric((), dropped)
        yield lost
