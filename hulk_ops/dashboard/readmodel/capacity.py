"""Capacity: headroom per backend resource now, its trend, and what runs out first.

A resource is one thing that fills up: Redis memory vs maxmemory, PostgreSQL connections vs
max_connections, a NATS stream's bytes / messages vs its limits, JetStream account storage,
Kubernetes requests vs allocatable per node and cluster. Growth without a limit (database size,
Qdrant points, consumer lag, Neo4j databases) is shown as a trend only. "Used" is the newest
result's value; the trend is a least-squares line over the window through the tracked metric's
history (`trends.TrendCache`); the ETA is (limit - used) / slope when the line rises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hulk_ops.dashboard.readmodel.store import ReadModel, TargetView
from hulk_ops.dashboard.readmodel.trends import trend_cache

CAPACITY_KINDS = ("redis", "postgres", "nats", "qdrant", "neo4j", "kubernetes")


@dataclass(frozen=True, slots=True)
class Resource:
    target: str
    kind: str
    name: str  # "memory", "stream ORDERS bytes", "node gpu-1 CPU requests", ...
    used: float
    limit: float | None
    unit: str  # bytes | count | cores | GiB | GPUs
    metric: str | None  # tracked metric carrying its history (the trend), when there is one
    slope_per_s: float | None = None
    fit_points: int = 0
    eta_s: float | None = None  # seconds until the limit at the trend; 0: full now; None: not rising / no limit

    @property
    def used_pct(self) -> float | None:
        return 100.0 * self.used / self.limit if self.limit else None

    @property
    def headroom(self) -> float | None:
        return self.limit - self.used if self.limit else None

    @property
    def slope_per_day(self) -> float | None:
        return None if self.slope_per_s is None else self.slope_per_s * 86400.0



def eta(used: float, limit: float | None, slope_per_s: float | None) -> float | None:
    """Seconds until the limit at the current trend; 0 when already full; None when not rising."""
    if not limit:
        return None
    if used >= limit:
        return 0.0
    if not slope_per_s or slope_per_s <= 0:
        return None
    return (limit - used) / slope_per_s


@dataclass(frozen=True, slots=True)
class CapacityReport:
    resources: list[Resource]
    window_s: float
    trend_start: float
    trend_at: float
    read_at: float

    def running_out(self) -> list[Resource]:
        """Resources with a limit and an ETA, soonest first."""
        return sorted((r for r in self.resources if r.eta_s is not None), key=lambda r: (r.eta_s, r.target))


def _limit(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name)
    return value if value and value > 0 else None


def _redis(m: dict[str, float]) -> Iterator[tuple]:
    if "used_memory_bytes" in m:
        yield "memory", m["used_memory_bytes"], _limit(m, "maxmemory_bytes"), "bytes", "used_memory_bytes"
    if "connected_clients" in m:
        yield "clients", m["connected_clients"], _limit(m, "maxclients"), "count", "connected_clients"


def _postgres(m: dict[str, float]) -> Iterator[tuple]:
    if "connections" in m:
        yield "connections", m["connections"], _limit(m, "max_connections"), "count", "connections"
    if "database_size_bytes" in m:
        yield "database size", m["database_size_bytes"], None, "bytes", "database_size_bytes"


def _nats(m: dict[str, float]) -> Iterator[tuple]:
    for area in ("storage", "memory"):
        if f"js.{area}_bytes" in m:
            yield (f"JetStream {area}", m[f"js.{area}_bytes"], _limit(m, f"js.max_{area}_bytes"), "bytes",
                   f"js.{area}_bytes")
    for name in sorted(m):
        parts = name.split(".")
        if parts[0] == "stream" and len(parts) == 3 and parts[2] in ("bytes", "messages"):
            limit = _limit(m, f"stream.{parts[1]}.{'max_bytes' if parts[2] == 'bytes' else 'max_msgs'}")
            yield f"stream {parts[1]} {parts[2]}", m[name], limit, "bytes" if parts[2] == "bytes" else "count", name
        elif parts[0] == "consumer" and len(parts) == 4 and parts[3] == "pending":
            yield f"consumer {parts[1]}/{parts[2]} lag", m[name], None, "count", name


def _qdrant(m: dict[str, float]) -> Iterator[tuple]:
    for name in sorted(m):
        parts = name.split(".")
        if parts[0] == "collection" and len(parts) == 3 and parts[2] == "points":
            yield f"collection {parts[1]} points", m[name], None, "count", name


def _neo4j(m: dict[str, float]) -> Iterator[tuple]:
    if "databases" in m:
        yield "databases", m["databases"], None, "count", "databases"
    if "databases_offline" in m:
        yield "databases offline", m["databases_offline"], None, "count", "databases_offline"


K8S_RESOURCES = (("cpu", "CPU requests", "cores", "cpu_allocatable"),
                 ("memory", "memory requests", "GiB", "memory_allocatable_gib"),
                 ("gpu", "GPU requests", "GPUs", "gpu_allocatable"))


def _kubernetes(m: dict[str, float]) -> Iterator[tuple]:
    nodes = sorted({n.split(".")[1] for n in m if n.startswith("node.") and n.endswith(".cpu_allocatable")})
    for scope, prefix in [("cluster", ""), *((f"node {n}", f"node.{n}.") for n in nodes)]:
        for short, label, unit, alloc in K8S_RESOURCES:
            used_name = f"{prefix}{'memory_requests_gib' if short == 'memory' else short + '_requests'}"
            limit = _limit(m, f"{prefix}{alloc}")
            if used_name in m and (limit or short != "gpu"):
                yield f"{scope} {label}", m[used_name], limit, unit, used_name


EXTRACT = {"redis": _redis, "postgres": _postgres, "nats": _nats, "qdrant": _qdrant, "neo4j": _neo4j,
           "kubernetes": _kubernetes}


def resources_of(view: TargetView) -> list[tuple]:
    """(target, kind, name, used, limit, unit, metric) of every resource in the target's newest result."""
    if view.result is None or view.kind not in EXTRACT or view.status in ("down", "unknown"):
        return []
    return [(view.name, view.kind, name, float(used), limit, unit, metric)
            for name, used, limit, unit, metric in EXTRACT[view.kind](view.result.metrics)]


def capacity_report(model: ReadModel, window_s: float, now: float | None = None) -> CapacityReport:
    now = time.time() if now is None else now
    names = [t.name for t in model.config.targets if t.kind in CAPACITY_KINDS]
    views = model.target_views(now, names=names)
    found = [r for v in views for r in resources_of(v)]
    series = [(r[0], r[6]) for r in found if r[6]]
    trends = trend_cache(model).fits(series, window_s, now)
    out = []
    for target, kind, name, used, limit, unit, metric in found:
        fit = trends.fits.get((target, metric)) if metric else None
        slope = fit.slope if fit is not None and math.isfinite(fit.slope) else None
        out.append(Resource(target, kind, name, used, limit, unit, metric, slope, fit.n if slope is not None else 0,
                            eta(used, limit, slope)))
    return CapacityReport(out, window_s, trends.start, trends.computed_at, now)
