"""The collector's own Prometheus metrics. A fresh `CollectorMetrics(registry)` per test.

Per target there are a handful of series (state x4, last duration, interval, breaker, probe counts);
the duration histogram is per kind, so 10,000 targets do not make 170,000 bucket series.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hulk_ops.core.model import STALE_INTERVALS

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STATES = ("up", "degraded", "down", "stale")


def version() -> str:
    try:
        return metadata.version("hulk-ops")
    except metadata.PackageNotFoundError:
        return "unknown"


class TargetStates(Collector):
    """`hulk_ops_target_state{target,kind,state}`: 1 for the target's current state, 0 for the other three.

    The state is the latest probe's status, or `stale` when that result is older than
    `STALE_INTERVALS` intervals (the scheduler is stuck, or the target moved to another replica);
    it is worked out when scraped, so a collector that stops probing shows it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._latest: dict[tuple[str, str], tuple[str, float, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def set(self, target: str, kind: str, status: str, interval_s: float) -> None:
        with self._lock:
            self._latest[(target, kind)] = (status, self._clock(), interval_s)

    def remove(self, target: str, kind: str) -> None:
        with self._lock:
            self._latest.pop((target, kind), None)

    def state(self, target: str, kind: str) -> str | None:
        with self._lock:
            entry = self._latest.get((target, kind))
        if entry is None:
            return None
        status, at, interval_s = entry
        return "stale" if self._clock() - at > STALE_INTERVALS * interval_s else status

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        with self._lock:
            keys = list(self._latest)
        for target, kind in keys:
            current = self.state(target, kind)
            if current is None:
                continue
            for state in STATES:
                family.add_metric([target, kind, state], 1.0 if state == current else 0.0)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("hulk_ops_target_state", "1 for the target's current state (up, degraded, down, "
                                 "stale), 0 for the others", labels=["target", "kind", "state"])


class _TargetSeries(Collector):
    """Series with a child per target, the children kept as entries of one dict (under one lock a scrape takes
    to copy them)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, list(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def _key(self, values: tuple[object, ...]) -> tuple[str, ...]:
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name}: {len(self._labelnames)} label values expected, got {len(values)}")
        return tuple(str(v) for v in values)


class TargetGauge(_TargetSeries):
    """A gauge with a child per target, the children kept as entries of one dict.

    Used like a `Gauge` (`labels(*values).set(v)`, `remove(*values)`) and exposed the same way. A
    prometheus_client child costs ~0.65 KB (an instance dict, a lock, a value object with a lock of its own);
    four per-target gauges made that ~2.6 KB a target. Setting a child is one dict store; adding and removing
    one take the lock a scrape takes to copy the values.
    """

    def labels(self, *values: object) -> TargetGaugeChild:
        key = self._key(values)
        with self._lock:
            self._values.setdefault(key, 0.0)
        return TargetGaugeChild(self._values, key)

    def remove(self, *values: object) -> None:
        """Drop a child (KeyError when there is none, as prometheus_client does)."""
        with self._lock:
            del self._values[self._key(values)]

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)
        with self._lock:
            items = list(self._values.items())
        for key, value in items:
            family.add_metric(list(key), value)
        yield family


class TargetGaugeChild:
    __slots__ = ("_key", "_values")

    def __init__(self, values: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._values, self._key = values, key

    def set(self, value: float) -> None:
        """Set the child's value; a child removed meanwhile (its target left the config) stays removed."""
        if self._key in self._values:
            self._values[self._key] = float(value)

    def get(self) -> float | None:
        return self._values.get(self._key)


class TargetCounter(_TargetSeries):
    """A counter with a child per target (and status), the children kept as entries of one dict.

    Used like a `Counter` (`labels(*values).inc()`) and exposed the same way (`_total`, and `_created` unless
    prometheus_client's created series are off). A prometheus_client child costs ~1.1 KB (an instance dict, a
    lock, a value object with a lock of its own); incrementing one here is one dict store on the loop thread.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self._created: dict[tuple[str, ...], float] = {}
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: object) -> TargetCounterChild:
        key = self._key(values)
        with self._lock:
            if key not in self._values:
                self._values[key], self._created[key] = 0.0, time.time()
        return TargetCounterChild(self._values, key)

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        created = getattr(prometheus_metrics, "_use_created", True)  # PROMETHEUS_DISABLE_CREATED_SERIES, as theirs
        with self._lock:
            items = [(key, value, self._created[key]) for key, value in self._values.items()]
        for key, value, at in items:
            family.add_metric(list(key), value, created=at if created else None)
        yield family


class TargetCounterChild:
    __slots__ = ("_key", "_values")

    def __init__(self, values: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._values, self._key = values, key

    def inc(self, amount: float = 1.0) -> None:
        self._values[self._key] += amount


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.probes = TargetCounter("hulk_ops_probes", "Probe results by status", ["target", "kind", "status"],
                                    registry=r)
        self.build_info = Gauge("hulk_ops_build_info", "hulk-ops' version and Python's (always 1)",
                                ["version", "python"], registry=r)
        self.build_info.labels(version(), platform.python_version()).set(1)
        self.duration = Histogram("hulk_ops_probe_duration_seconds", "Wall time of one probe check, per kind",
                                  ["kind"], buckets=DURATION_BUCKETS, registry=r)
        self.last_duration = TargetGauge("hulk_ops_probe_last_duration_seconds",
                                         "Wall time of the target's latest probe", ["target", "kind"], registry=r)
        self.target_state = TargetStates()
        r.register(self.target_state)
        self.breaker_open = TargetGauge("hulk_ops_breaker_open", "1 while the target's circuit breaker is open",
                                        ["target"], registry=r)
        self.cycle_lag = Gauge("hulk_ops_cycle_lag_seconds",
                               "Largest delay between a probe's planned and actual start in the last second",
                               registry=r)
        self.start_lag = Histogram("hulk_ops_probe_start_lag_seconds", "Delay between planned and actual start",
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5), registry=r)
        self.skipped = Counter("hulk_ops_probes_skipped", "Runs skipped because the previous one still ran",
                               ["target"], registry=r)
        self.store_write = Histogram("hulk_ops_store_write_seconds", "Time of one batched store write",
                                     buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5), registry=r)
        self.store_up = Gauge("hulk_ops_store_up", "1 when the last store write succeeded", registry=r)
        self.store_buffered = Gauge("hulk_ops_store_buffered_results", "Results waiting for the store", registry=r)
        self.store_dropped = Counter("hulk_ops_store_dropped_results",
                                     "Results dropped (oldest first) while the buffer was full", registry=r)
        self.last_cycle = Gauge("hulk_ops_last_probe_timestamp_seconds", "Unix time of the latest finished probe",
                                registry=r)
        self.targets_owned = Gauge("hulk_ops_targets_owned", "Targets this replica probes", ["replica"], registry=r)
        self.config_reload_success = Gauge("hulk_ops_config_reload_success",
                                           "1 when the latest config reload succeeded (or none was tried), 0 when "
                                           "it was refused and the previous config stays in force", registry=r)
        self.config_reload_success.set(1)
        self.config_last_reload = Gauge("hulk_ops_config_last_reload_timestamp_seconds",
                                        "Unix time the config in force was loaded (start or latest good reload)",
                                        registry=r)
        self.probe_interval = TargetGauge("hulk_ops_probe_interval_seconds",
                                          "Configured probe interval of each target", ["target", "kind"], registry=r)
        self.slo_objective = TargetGauge("hulk_ops_slo_objective_ratio",
                                         "Availability objective of each target (0-1), for error-budget burn rules",
                                         ["target", "kind"], registry=r)
        # Prometheus query pulls (hulk_ops/collectors/prometheus_pull.py), labelled by query name (unique per config)
        self.query_failures = Counter("hulk_ops_query_failures", "Failed Prometheus query pulls", ["query"],
                                      registry=r)
        self.query_up = Gauge("hulk_ops_query_up", "1 when the query's latest pull succeeded", ["query"], registry=r)
        self.query_series = Gauge("hulk_ops_query_series", "Series written by the query's latest pull", ["query"],
                                  registry=r)
        self.query_last_success = Gauge("hulk_ops_query_last_success_timestamp_seconds",
                                        "Unix time of the query's latest successful pull", ["query"], registry=r)
        # notifications (hulk_ops/collectors/notify/)
        self.notifications = Counter("hulk_ops_notifications", "Webhook notification outcomes",
                                     ["webhook", "event", "outcome"], registry=r)
        self.notify_outbox = Gauge("hulk_ops_notify_outbox_messages", "Messages waiting in a webhook's outbox",
                                   ["webhook"], registry=r)
        self.incidents_open = Gauge("hulk_ops_incidents_open", "Incidents notified as open and not yet resolved",
                                    registry=r)
