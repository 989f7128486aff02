"""Capacity: headroom per backend resource now, its trend, and what runs out first.

A resource is one thing that fills up: Redis memory vs maxmemory, PostgreSQL connections vs
max_connections, a NATS stream's bytes / messages vs its limits, Kubernetes requests vs allocatable
per node and cluster. Growth without a limit (database size, Qdrant points, consumer lag) is shown as
a trend only. Each kind names its resources in its module's `capacity()` (read through the registry):
the kinds on this page are the configured ones that have it. "Used" is the newest
result's value; the trend is a least-squares line over the window through the tracked metric's
history (`trends.TrendCache`); the ETA is (limit - used) / slope when the line rises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from hulk_ops.dashboard.readmodel.store import ReadModel, TargetView
from hulk_ops.dashboard.readmodel.trends import trend_cache
from hulk_ops.probes import registry


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


def resources_of(view: TargetView) -> list[tuple]:
    """(target, kind, name, used, limit, unit, metric) of every resource in the target's newest result."""
    extract = registry.capacity(view.kind)
    if view.result is None or extract is None or view.status in ("down", "unknown"):
        return []
    return [(view.name, view.kind, name, float(used), limit, unit, metric)
            for name, used, limit, unit, metric in extract(view.result.metrics)]


def capacity_kinds(kinds: Iterable[str]) -> list[str]:
    """Those of these kinds that have capacity resources, in order of first appearance."""
    return [k for k in dict.fromkeys(kinds) if registry.capacity(k) is not None]


def capacity_report(model: ReadModel, window_s: float, now: float | None = None) -> CapacityReport:
    now = time.time() if now is None else now
    kinds = set(capacity_kinds(t.kind for t in model.config.targets))
    names = [t.name for t in model.config.targets if t.kind in kinds]
    views = model.target_views(now, names=names)
    found = [r for v in views for r in resources_of(v)]
    series = [(r[0], r[6]) for r in found if r[6]]
    trends = trend_cache(model).fits(series, window_s, now)
    out = []
    for target, kind, name, used, limit, unit, metric in found:
        fit = trends.fits.get((target, metric)) if metric else None
        slope, points = (fit.slope, fit.n) if fit is not None and math.isfinite(fit.slope) else (None, 0)
        out.append(Resource(target, kind, name, used, limit, unit, metric, slope, points, eta(used, limit, slope)))
    return CapacityReport(out, window_s, trends.start, trends.computed_at, now)
