"""Latency and SLOs: percentiles, availability and error budget per target and per kind over a window.

Availability is the share of probe samples that are not *down* (degraded still serves). The error
budget of a window is what the objective allows to be down: (1 - objective) x samples; "budget
left" is the part of it not spent, in % (negative: overspent). Targets without samples in the
window show no figures rather than 100 %.

Two ways to the numbers, chosen by size:
- exact: the raw samples, one lexsort for all targets (windows of at most two hour chunks, or a
  scope of at most `EXACT_CHUNKS` target-hours);
- summarised: per-hour histograms of `rollup.FleetRollup` (larger scopes over 6 h / 24 h):
  percentiles within ±3.1 %, counts exact, the window starting at the top of its first hour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hulk_ops.collectors.codec import hours_between
from hulk_ops.core.config import TargetSettings
from hulk_ops.dashboard.readmodel import rollup as rollup_mod
from hulk_ops.dashboard.readmodel.chunks import FlatSamples, decode_flat
from hulk_ops.dashboard.readmodel.series import QUANTILES, Buckets, bucketize, group_quantiles
from hulk_ops.dashboard.readmodel.store import ReadModel

EXACT_CHUNKS = 600
LONG_AFTER_S = 86_400 + 1  # longer windows are read from hour and day summaries (readmodel/longrange.py)
DOWN = 2


@dataclass(frozen=True, slots=True)
class Slo:
    availability: float  # objective, %
    latency_p95_ms: float | None


@dataclass(frozen=True, slots=True)
class LatencyRow:
    target: str
    kind: str
    samples: int
    down: int
    p50: float
    p95: float
    p99: float
    slo: Slo
    budget_left_pct: float | None = None  # % of the window's error budget not spent (see budget_left)

    @classmethod
    def of(cls, target: str, kind: str, samples: int, down: int, p50: float, p95: float, p99: float,
           slo: Slo) -> LatencyRow:
        return cls(target, kind, samples, down, p50, p95, p99, slo, budget_left(samples, down, slo.availability))

    @property
    def availability(self) -> float | None:
        return 100.0 * (self.samples - self.down) / self.samples if self.samples else None

    @property
    def latency_ok(self) -> bool | None:
        if self.slo.latency_p95_ms is None or math.isnan(self.p95):
            return None
        return self.p95 <= self.slo.latency_p95_ms


@dataclass(frozen=True, slots=True)
class KindRow:
    kind: str
    targets: int
    samples: int
    down: int
    p50: float
    p95: float
    p99: float

    @property
    def availability(self) -> float | None:
        return 100.0 * (self.samples - self.down) / self.samples if self.samples else None


@dataclass(frozen=True, slots=True)
class LatencyReport:
    start: float
    end: float
    rows: list[LatencyRow]
    kinds: list[KindRow]
    exact: bool
    read_at: float


def budget_left(samples: int, down: int, objective_pct: float) -> float | None:
    """% of the window's error budget not yet spent (100: nothing down; 0: all spent; < 0: overspent)."""
    if samples == 0:
        return None
    allowed = (1.0 - objective_pct / 100.0) * samples
    return 100.0 * (1.0 - down / allowed)


def slo_of(model: ReadModel, target: TargetSettings) -> Slo:
    cache = model.memo.setdefault("slo", {})  # the config never changes in a process
    found = cache.get(target.name)
    if found is None:
        s = model.config.slo_for(target)
        found = cache[target.name] = Slo(s.availability, s.latency_p95_ms)
    return found


def fleet_latency(model: ReadModel, window_s: float, kind: str | None = None,
                  now: float | None = None, start: float | None = None, end: float | None = None) -> LatencyReport:
    """Per-target and per-kind percentiles, availability and error budget for the window ending now (or for
    [start, end]). Windows longer than a day, or reaching past the raw history, come from the long-range tier."""
    now = time.time() if now is None else now
    end = now if end is None else min(end, now)
    start = end - window_s if start is None else start
    if end - start >= LONG_AFTER_S or start < now - model.config.store.retention_h * 3600:
        return _long_latency(model, start, end, kind, now)
    targets = [t for t in model.config.targets if kind is None or t.kind == kind]
    names = [t.name for t in targets]
    hours = hours_between(start, end)
    kinds = sorted({t.kind for t in targets})
    kind_of = np.array([kinds.index(t.kind) for t in targets], dtype=np.int64)
    exact = len(hours) <= 2 or len(names) * len(hours) <= EXACT_CHUNKS
    if not names:
        return LatencyReport(start, end, [], [], True, now)
    if exact:
        rollup = rollup_mod.fleet_rollup(model)
        samples = decode_flat(rollup.blobs(names, hours, now), hours, len(names)).within(start, end)
        per_target, per_kind, counts, kind_counts = _exact(samples, kind_of, len(names), len(kinds))
    else:
        hist, counts = rollup_mod.fleet_rollup(model).window(names, start, end, now)
        return _from_histograms(model, targets, kinds, kind_of, hist, counts, math.floor(start / 3600) * 3600.0,
                                end, now)
    totals, downs, quants = counts.sum(axis=1).tolist(), counts[:, DOWN].tolist(), per_target.tolist()
    rows = [LatencyRow.of(t.name, t.kind, totals[i], downs[i], p50, p95, p99, slo_of(model, t))
            for i, (t, (p50, p95, p99)) in enumerate(zip(targets, quants, strict=True))]
    kind_rows = [
        KindRow(k, int((kind_of == j).sum()), int(kind_counts[j].sum()), int(kind_counts[j, DOWN]),
                *map(float, per_kind[j]))
        for j, k in enumerate(kinds)
    ]
    return LatencyReport(start, end, rows, kind_rows, exact, now)


def _long_latency(model: ReadModel, start: float, end: float, kind: str | None, now: float) -> LatencyReport:
    from hulk_ops.dashboard.readmodel.longrange import long_range

    targets = [t for t in model.config.targets if kind is None or t.kind == kind]
    if not targets:
        return LatencyReport(start, end, [], [], False, now)
    kinds = sorted({t.kind for t in targets})
    kind_of = np.array([kinds.index(t.kind) for t in targets], dtype=np.int64)
    totals = long_range(model).totals([t.name for t in targets], start, end, now)
    return _from_histograms(model, targets, kinds, kind_of, totals.hist, totals.counts, totals.start, totals.end, now)


def _from_histograms(model: ReadModel, targets: Sequence[TargetSettings], kinds: list[str], kind_of: np.ndarray,
                     hist: np.ndarray, counts: np.ndarray, start: float, end: float, now: float) -> LatencyReport:
    per_target = rollup_mod.hist_quantiles(hist, QUANTILES)
    kind_hist = np.zeros((len(kinds), hist.shape[1]), dtype=np.int64)
    np.add.at(kind_hist, kind_of, hist)
    per_kind = rollup_mod.hist_quantiles(kind_hist, QUANTILES)
    kind_counts = np.zeros((len(kinds), counts.shape[1]), dtype=np.int64)
    np.add.at(kind_counts, kind_of, counts)
    totals, downs, quants = counts.sum(axis=1).tolist(), counts[:, DOWN].tolist(), per_target.tolist()
    rows = [LatencyRow.of(t.name, t.kind, totals[i], downs[i], p50, p95, p99, slo_of(model, t))
            for i, (t, (p50, p95, p99)) in enumerate(zip(targets, quants, strict=True))]
    kind_rows = [
        KindRow(k, int((kind_of == j).sum()), int(kind_counts[j].sum()), int(kind_counts[j, DOWN]),
                *map(float, per_kind[j]))
        for j, k in enumerate(kinds)
    ]
    return LatencyReport(start, end, rows, kind_rows, False, now)


def _exact(samples: FlatSamples, kind_of: np.ndarray, n: int,
           n_kinds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles per target and per kind, status counts per target and per kind."""
    measured = ~np.isnan(samples.latency)
    lat, groups = samples.latency[measured], samples.group[measured].astype(np.int64)
    per_target = group_quantiles(lat, groups, n)
    per_kind = group_quantiles(lat, kind_of[groups], n_kinds)
    codes = samples.group.astype(np.int64) * 3 + np.minimum(samples.status, 2)
    counts = np.bincount(codes, minlength=n * 3).reshape(n, 3)
    kind_counts = np.zeros((n_kinds, 3), dtype=np.int64)
    np.add.at(kind_counts, kind_of, counts)
    return per_target, per_kind, counts, kind_counts


BURN_WINDOWS_S = {"1h": 3_600, "6h": 21_600, "3d": 3 * 86_400}


def burn_rate(samples: int, down: int, objective_pct: float) -> float | None:
    """How fast the error budget burns: the share of samples down over the share the objective allows
    (1: spent exactly over the SLO period; 14.4 over 1 h: 2 % of a 30-day budget in that hour)."""
    if samples == 0 or objective_pct >= 100.0:
        return None
    return (down / samples) / (1.0 - objective_pct / 100.0)


BURN_TTL_S = 30.0  # burn rates over an hour and more do not move in half a minute: reused that long


def burn_rates(model: ReadModel, kind: str | None = None,
               now: float | None = None) -> dict[str, dict[str, float | None]]:
    """Per target: the burn rate over 1 h, 6 h and 3 d ending now (status counts only, no percentiles: 1 h from
    the raw samples, 6 h and 3 d from the long-range tier, starting at the top of their first hour)."""
    now = time.time() if now is None else now
    cache = model.memo.setdefault("burn_rates", {})
    found = cache.get(kind)
    if found is not None and 0 <= now - found[0] < BURN_TTL_S:
        return found[1]
    targets = [t for t in model.config.targets if kind is None or t.kind == kind]
    names = [t.name for t in targets]
    out: dict[str, dict[str, float | None]] = {n: {} for n in names}
    if names:
        for label, window_s in BURN_WINDOWS_S.items():
            counts = _status_counts(model, names, now - window_s, now)
            totals, downs = counts.sum(axis=1).tolist(), counts[:, DOWN].tolist()
            for i, t in enumerate(targets):
                out[t.name][label] = burn_rate(totals[i], downs[i], slo_of(model, t).availability)
    cache[kind] = (now, out)
    return out


def _status_counts(model: ReadModel, names: list[str], start: float, end: float) -> np.ndarray:
    """(targets, 3) up / degraded / down sample counts in [start, end]."""
    hours = hours_between(start, end)
    if len(hours) <= 2:
        samples = decode_flat(model.history_blobs(names, hours), hours, len(names)).within(start, end)
        codes = samples.group.astype(np.int64) * 3 + np.minimum(samples.status, 2)
        return np.bincount(codes, minlength=len(names) * 3).reshape(len(names), 3)
    from hulk_ops.dashboard.readmodel.longrange import long_range

    return long_range(model).counts(names, start, end, end)


def kind_budgets(rows: Sequence[LatencyRow]) -> dict[str, float | None]:
    """Per kind: % of its error budget left, the budget being what every target's own objective allows."""
    allowed: dict[str, float] = {}
    down: dict[str, int] = {}
    for r in rows:
        allowed[r.kind] = allowed.get(r.kind, 0.0) + (1.0 - r.slo.availability / 100.0) * r.samples
        down[r.kind] = down.get(r.kind, 0) + r.down
    return {k: (100.0 * (1.0 - down[k] / a) if a > 0 else None) for k, a in allowed.items()}


def worst_first(rows: Sequence[LatencyRow], limit: int) -> list[str]:
    """Targets to compare by default: least error budget left, then highest p95."""
    def key(row: LatencyRow) -> tuple[float, float]:
        left = row.budget_left_pct
        return (left if left is not None else math.inf, -(row.p95 if not math.isnan(row.p95) else -1.0))

    return [r.target for r in sorted(rows, key=key)[:limit]]


def latency_series(model: ReadModel, names: Sequence[str], window_s: float,
                   now: float | None = None) -> dict[str, Buckets]:
    """Per target: latency over the window, raw or bucketed (p50/p95/p99/max per bucket), <= MAX_POINTS."""
    now = time.time() if now is None else now
    out = {}
    for name in names:
        data = model.history(name, now - window_s, now)
        out[name] = bucketize(data["ts"], data["latency"], now - window_s, now, how="quantiles")
    return out


def pulled_series(model: ReadModel, names: Sequence[str], window_s: float,
                  now: float | None = None) -> dict[str, Buckets]:
    """Prometheus-pulled series over the window (mean/min/max per bucket when downsampled)."""
    now = time.time() if now is None else now
    out = {}
    for name in names:
        data = model.series_history(name, now - window_s, now)
        out[name] = bucketize(data["ts"], data["value"], now - window_s, now, how="mean")
    return out
