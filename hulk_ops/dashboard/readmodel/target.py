"""One target in full: newest result and every metric, breaker, dependencies, incident membership, events,
and its history (latency and status, tracked metrics) over a window, downsampled for charts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hulk_ops.core.incidents import Incident
from hulk_ops.dashboard.readmodel.latency import LatencyRow, slo_of
from hulk_ops.dashboard.readmodel.series import QUANTILES, Buckets, bucketize, quantiles
from hulk_ops.dashboard.readmodel.store import ReadModel, TargetView
from hulk_ops.dashboard.readmodel.timeline import TimelineEntry, from_event


@dataclass(frozen=True, slots=True)
class Membership:
    incident: Incident
    role: str  # "root" | "dependent"


@dataclass(frozen=True, slots=True)
class TargetDetail:
    view: TargetView
    breaker: dict[str, Any]
    depends_on: list[TargetView]
    dependents: list[TargetView]  # targets that declare depends_on this one
    memberships: list[Membership]
    events: list[TimelineEntry]
    tracked: list[str]
    read_at: float


@dataclass(frozen=True, slots=True)
class TargetHistory:
    latency: Buckets
    status_ts: np.ndarray  # raw status samples, bucketed to the worst status per bucket
    status: np.ndarray
    stats: LatencyRow
    metrics: dict[str, Buckets]


def target_detail(model: ReadModel, name: str, now: float | None = None, events: int = 100) -> TargetDetail:
    now = time.time() if now is None else now
    config = model.config
    settings = config.target(name)  # KeyError: unknown target
    dependents = [t.name for t in config.targets if name in t.depends_on]
    views = model.target_views(now)
    by_name = {v.name: v for v in views}
    memberships = [Membership(i, "root" if i.root == name else "dependent")
                   for i in model.incidents(views) if name in i.targets]
    kinds = {t.name: t.kind for t in config.targets}
    return TargetDetail(
        view=by_name[name], breaker=model.breakers().get(name, {"state": "closed"}),
        depends_on=[by_name[d] for d in settings.depends_on], dependents=[by_name[d] for d in dependents],
        memberships=memberships, events=[from_event(e, kinds) for e in model.events(events, target=name)],
        tracked=model.tracked_metrics(name), read_at=now,
    )


def target_history(model: ReadModel, view: TargetView, window_s: float, metrics: Sequence[str] = (),
                   now: float | None = None) -> TargetHistory:
    now = time.time() if now is None else now
    start = now - window_s
    data = model.history(view.name, start, now)
    latency = bucketize(data["ts"], data["latency"], start, now, how="quantiles")
    # status: the worst per latency bucket (down beats degraded beats up), same width as the latency chart
    status = bucketize(data["ts"], data["status"].astype(np.float64), start, now, how="mean")
    measured = data["latency"][~np.isnan(data["latency"])]
    p50, p95, p99 = quantiles(measured, QUANTILES)
    down = int((data["status"] == 2).sum())
    stats = LatencyRow.of(view.name, view.kind, int(data.size), down, p50, p95, p99, slo_of(model, view.settings))
    series = {}
    for metric in metrics:
        points = model.metric_history(view.name, metric, start, now)
        series[metric] = bucketize(points["ts"], points["value"], start, now, how="mean")
    return TargetHistory(latency, status.ts, status.columns["max"], stats, series)
