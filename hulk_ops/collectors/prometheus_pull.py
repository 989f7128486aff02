"""Prometheus query pull: each configured query, on its own interval, into a named series of the store.

A prometheus target's `queries: [{name, promql, interval_s}]` become one `QueryJob` each
(`build_query_jobs`, called by the composition root `hulk_ops.entrypoints.bootstrap`). A QueryJob is a
`hulk_ops.collectors.scheduler.Periodic`: the scheduler keeps it on the same heap as the probe `Job`s, so
it shares their fixed-rate timing and jitter, the concurrency semaphore, replica ownership (it runs
where its target is owned), the skip-if-still-running rule and the hard timeout backstop. The
queries of one target share one `PromClient` (its own threads; separate from the probe's client,
so a failing pull and a failing probe never tear down each other's connection).

One pull: an instant query (timeout: the target's `timeout_s`, at most the query's interval) ->
[(labels, ts, value)] -> one point per label set, in the series `<query>{k="v",...}` (labels
sorted, `__name__` dropped, values escaped; a scalar or a sample without labels is plain
`<query>`), stamped with Prometheus's evaluation time. At most `max_series` label sets are kept
(first by series name; the rest are dropped and logged). Non-finite values (NaN, Inf) are skipped.
The points go straight to `ResultStore.write_series` (`s:<series>:<hour>` chunks and the `series`
index), read back by `hulk_ops.dashboard.readmodel.ReadModel.series_history()` / `series_names()`.

Failures never escape: Prometheus unreachable, a timeout, rejected PromQL, a range-vector or string
result, or a failed store write each add one to `hulk_ops_query_failures_total{query}`, set
`hulk_ops_query_up{query}` to 0 and keep the reason in `last_error`; a warning is logged when a
query starts failing or its reason changes, and an info line when it recovers. Success sets
`hulk_ops_query_up` to 1, `hulk_ops_query_series{query}` (series written) and
`hulk_ops_query_last_success_timestamp_seconds{query}`. A point not written is lost (no buffering:
the next pull brings a fresh value).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.config import TargetSettings
from hulk_ops.probes.base import describe_error

if TYPE_CHECKING:
    from hulk_ops.probes.prometheus import QuerySettings, Settings
    from hulk_ops.probes.prometheus_api import PromClient

log = structlog.get_logger("hulk_ops.query_pull")


class QueryJob:
    def __init__(self, target: Settings, query: QuerySettings, client: PromClient, store: Any,
                 metrics: CollectorMetrics) -> None:
        self.target = target
        self.query = query
        self.client = client
        self.store = store
        self.metrics = metrics
        self.name = f"{target.name}/{query.name}"
        self.owner = target.name
        self.interval_s = target.query_interval(query)
        self.timeout_s = min(target.timeout_s, self.interval_s)
        self.running = False
        self.pulls = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_points: list[tuple[str, float, float]] = []
        metrics.query_failures.labels(query.name).inc(0)  # the series exists before the first failure

    async def run(self) -> None:
        self.pulls += 1
        phase = "query"
        try:
            async with asyncio.timeout(self.timeout_s):
                samples = await self.client.call(self.client.query, self.query.promql, self.timeout_s)
                points = self.points(samples)
                phase = "store"
                await self.store.write_series(points)
        except Exception as exc:  # failure is counted and logged; the collector carries on
            self._failed(self._describe(exc, phase))
            return
        self._succeeded(points)

    def points(self, samples: Sequence[tuple[dict[str, str], float, float]]) -> list[tuple[str, float, float]]:
        named = sorted((series_name(self.query.name, labels), ts, value) for labels, ts, value in samples
                       if math.isfinite(value))
        limit = self.query.max_series
        if len(named) > limit:
            log.warning("query_series_truncated", query=self.query.name, series=len(named), kept=limit)
        return named[:limit]

    async def close(self) -> None:
        self.client.close()

    def _describe(self, exc: BaseException, phase: str) -> str:
        from hulk_ops.probes.prometheus_api import PromQueryError

        if isinstance(exc, TimeoutError):
            return f"timed out after {self.timeout_s:.1f} s" + (" writing to the store" if phase == "store" else "")
        if phase == "store":
            return f"store write failed: {type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, PromQueryError):
            return str(exc)
        return describe_error(exc, self.target.url, self.timeout_s)

    def _failed(self, error: str) -> None:
        self.failures += 1
        q = self.query.name
        self.metrics.query_failures.labels(q).inc()
        self.metrics.query_up.labels(q).set(0)
        if error != self.last_error:
            log.warning("query_failing", query=q, target=self.target.name, error=error)
        self.last_error = error

    def _succeeded(self, points: list[tuple[str, float, float]]) -> None:
        q = self.query.name
        if self.last_error is not None:
            log.info("query_recovered", query=q, target=self.target.name, after_failures=self.failures)
        self.last_error = None
        self.last_points = points
        self.metrics.query_up.labels(q).set(1)
        self.metrics.query_series.labels(q).set(len(points))
        self.metrics.query_last_success.labels(q).set(time.time())


def series_name(query: str, labels: dict[str, str]) -> str:
    """`up` + {job: "api", instance: "a:9100"} -> `up{instance="a:9100",job="api"}`."""
    shown = sorted((k, v) for k, v in labels.items() if k != "__name__")
    if not shown:
        return query
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in shown)
    return f"{query}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def build_query_jobs(targets: Sequence[TargetSettings], store: Any, metrics: CollectorMetrics) -> list[QueryJob]:
    """One QueryJob per query of every prometheus target; one client per target. No I/O."""
    jobs: list[QueryJob] = []
    for target in targets:
        queries = getattr(target, "queries", None)
        if target.kind != "prometheus" or not queries:
            continue
        from hulk_ops.probes.prometheus import build_client

        client = build_client(target)  # type: ignore[arg-type]
        jobs.extend(QueryJob(target, q, client, store, metrics) for q in queries)  # type: ignore[arg-type]
    return jobs
