"""Windows longer than the raw history: per-target totals from the long-range tier.

A window is taken in whole hours (from the top of its first hour). Each of its days is read from the
cheapest source that has it:
- a day wholly inside the window and over: its day summary; where that is missing, its hour summaries;
- the other hours (the window's first and last day): their hour summaries;
- hours with no summary yet (the hour under way, the one just closed, hours the collectors have not
  summarised): the raw chunks, while `store.retention_h` keeps them.

The sums over past days change only when a summary is added late (a rebuild after an outage), so this
process keeps them for `CACHE_S`; the hours of today are re-read every hour, the raw hours on every request.
Status counts alone (`counts`: burn rates) come from per-slot counts of each month and day read, kept the
same way, so a second window over the same months and days reads nothing again.
The dashboard's warm-up fills the 7- and 30-day sums before it listens (hulk_ops/dashboard/serve.py).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import numpy as np

from hulk_ops.collectors import rollups
from hulk_ops.collectors.codec import HOUR, hour_of
from hulk_ops.dashboard.readmodel.chunks import decode_flat
from hulk_ops.dashboard.readmodel.rollup import summarise
from hulk_ops.dashboard.readmodel.series import QUANTILES, Buckets
from hulk_ops.dashboard.readmodel.store import ReadModel

DAY = rollups.DAY
CACHE_S = 3600.0
CACHE_MAX = 64
PERIODS_MAX = 16  # per-slot counts of (targets, month or day): 0.75 MB each at 2,000 targets
T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Totals:
    hist: np.ndarray  # (targets, HIST_BUCKETS) int64
    counts: np.ndarray  # (targets, 3) int64: up, degraded, down
    start: float  # the window's effective start (top of its first hour)
    end: float
    raw_hours: int  # hours read from raw chunks


class LongRange:
    def __init__(self, model: ReadModel) -> None:
        self.model = model
        # a key's first item names what built the value ("days": _days, "hours": _hours)
        self._cache: _Recent[object] = _Recent(CACHE_MAX)
        self._periods: _Recent[tuple[np.ndarray, list[int]]] = _Recent(PERIODS_MAX)

    def totals(self, names: Sequence[str], start: float, end: float, now: float | None = None) -> Totals:
        now = time.time() if now is None else now
        end = min(end, now)
        n = len(names)
        hist = np.zeros((n, rollups.HIST_BUCKETS), dtype=np.int64)
        counts = np.zeros((n, rollups.STATUS_CODES), dtype=np.int64)
        h0, h1 = hour_of(start), hour_of(end)
        if n == 0 or h1 < h0:
            return Totals(hist, counts, h0 * HOUR, end, 0)
        key_names = tuple(names)
        whole, partial = _plan(h0, h1, now)
        if whole:
            part = self._cached(("days", key_names, whole[0], whole[-1]), now,
                                lambda: self._days(names, whole[0], whole[-1], now))
            hist += part[0]
            counts += part[1]
        raw_needed: dict[int, list[int]] = {}
        for d, first, last in partial:
            version = _version(d, now)
            part_hist, part_counts, missing = self._cached(
                ("hours", key_names, d, first, last, version), now,
                functools.partial(self._hours, names, d, first, last, version, now))
            hist += part_hist
            counts += part_counts
            for row, slots in missing.items():
                for slot in slots:
                    raw_needed.setdefault(d * 24 + slot, []).append(row)
        raw_hours = self._raw(names, raw_needed, now, start, end, hist, counts)
        return Totals(hist, counts, h0 * HOUR, end, raw_hours)

    def counts(self, names: Sequence[str], start: float, end: float, now: float | None = None) -> np.ndarray:
        """(len(names), 3) up / degraded / down sample counts over the window, read as `totals` reads it (from
        the top of its first hour), without the histograms."""
        now = time.time() if now is None else now
        end = min(end, now)
        n = len(names)
        counts = np.zeros((n, rollups.STATUS_CODES), dtype=np.int64)
        h0, h1 = hour_of(start), hour_of(end)
        if n == 0 or h1 < h0:
            return counts
        whole, partial = _plan(h0, h1, now)
        by_month: dict[int, list[int]] = {}
        for d in whole:
            month, slot = rollups.month_of_day(d)
            by_month.setdefault(month, []).append(slot)
        for month, slots in by_month.items():
            per_slot, masks = self._period(names, "days", month, _month_version(month, now), now)
            counts += per_slot[:, slots].sum(axis=1)
            start_day = rollups.month_start_day(month)
            for row, mask in enumerate(masks):
                for slot in slots:
                    if not mask >> slot & 1:  # no day summary: the day's hour summaries
                        day = start_day + slot
                        hours, _ = self._period(names, "hours", day, _version(day, now), now)
                        counts[row] += hours[row].sum(axis=0)
        raw_needed: dict[int, list[int]] = {}
        for d, first, last in partial:
            per_slot, masks = self._period(names, "hours", d, _version(d, now), now)
            counts += per_slot[:, first:last + 1].sum(axis=1)
            for row, mask in enumerate(masks):
                for slot in range(first, last + 1):
                    if not mask >> slot & 1:
                        raw_needed.setdefault(d * 24 + slot, []).append(row)
        if raw_needed:
            hist = np.zeros((n, rollups.HIST_BUCKETS), dtype=np.int64)
            self._raw(names, raw_needed, now, start, end, hist, counts)
        return counts

    def _period(self, names: Sequence[str], kind: str, period: int, version: int,
                now: float) -> tuple[np.ndarray, list[int]]:
        """Per-slot status counts (len(names), SLOTS, 3) and masks of one month's day summaries ("days") or one
        day's hour summaries ("hours")."""
        found = self._periods.get((kind, tuple(names), period, version), now)
        if found is not None:
            return found
        of = self.model.keys.rollup_daily if kind == "days" else self.model.keys.rollup_hourly
        values = self.model.values([of(name, period) for name in names])
        return self._keep_period(names, kind, period, version, now, rollups.slot_counts(values), values)

    def _keep_period(self, names: Sequence[str], kind: str, period: int, version: int, now: float,
                     per_slot: np.ndarray, values: Sequence[bytes | None]) -> tuple[np.ndarray, list[int]]:
        built = (per_slot.reshape(len(names), rollups.SLOTS, rollups.STATUS_CODES),
                 [rollups.mask_of(v) for v in values])
        self._periods.put((kind, tuple(names), period, version), now, built)
        return built

    def _days(self, names: Sequence[str], first_day: int, last_day: int,
              now: float) -> tuple[np.ndarray, np.ndarray]:
        """Sums over whole past days: day summaries, else the day's hour summaries."""
        n = len(names)
        months: dict[int, tuple[int, int]] = {}
        for d in range(first_day, last_day + 1):
            month, slot = rollups.month_of_day(d)
            lo, hi = months.get(month, (slot, slot))
            months[month] = (min(lo, slot), max(hi, slot))
        keys = self.model.keys
        hist = np.zeros((n, rollups.HIST_BUCKETS), dtype=np.int64)
        counts = np.zeros((n, rollups.STATUS_CODES), dtype=np.int64)
        fallback: list[tuple[int, int]] = []  # (row, day) without a day summary
        for month, (lo, hi) in months.items():
            values = self.model.values([keys.rollup_daily(name, month) for name in names])
            part_hist, part_counts, per_slot = rollups.totals_by_slot(values, (lo, hi))
            self._keep_period(names, "days", month, _month_version(month, now), now, per_slot, values)
            hist += part_hist
            counts += part_counts
            start = rollups.month_start_day(month)
            for row, value in enumerate(values):
                mask = rollups.mask_of(value)
                fallback += [(row, start + s) for s in range(lo, hi + 1) if not mask >> s & 1]
        if fallback:
            values = self.model.values([keys.rollup_hourly(names[row], day) for row, day in fallback])
            part_hist, part_counts = rollups.totals(values, [row for row, _ in fallback], n)
            hist += part_hist
            counts += part_counts
        return hist, counts

    def _hours(self, names: Sequence[str], day: int, first: int, last: int, version: int, now: float
               ) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
        """Sums of one day's hour summaries in slots first..last, and per row the slots without one."""
        values = self.model.values([self.model.keys.rollup_hourly(name, day) for name in names])
        hist, counts, per_slot = rollups.totals_by_slot(values, (first, last))
        self._keep_period(names, "hours", day, version, now, per_slot, values)
        missing: dict[int, list[int]] = {}
        for row, value in enumerate(values):
            mask = rollups.mask_of(value)
            gaps = [s for s in range(first, last + 1) if not mask >> s & 1]
            if gaps:
                missing[row] = gaps
        return hist, counts, missing

    def _raw(self, names: Sequence[str], needed: dict[int, list[int]], now: float, start: float, end: float,
             hist: np.ndarray, counts: np.ndarray) -> int:
        """Add the raw samples of the (hour, rows) not summarised, where raw chunks are still kept."""
        oldest = hour_of(now - self.model.config.store.retention_h * HOUR)
        used = 0
        for hour, rows in sorted(needed.items()):
            if hour < oldest or hour * HOUR > now:
                continue
            picked = [names[r] for r in rows]
            samples = decode_flat(self.model.history_blobs(picked, [hour]), [hour], len(picked))
            samples = samples.within(hour_of(start) * HOUR, end)
            if samples.ts.size == 0:
                continue
            part_hist, part_counts = summarise(samples, len(picked))
            idx = np.array(rows, dtype=np.int64)
            hist[idx] += part_hist
            counts[idx] += part_counts
            used += 1
        return used

    def _cached(self, key: tuple[object, ...], now: float, build: Callable[[], T]) -> T:
        found = self._cache.get(key, now)
        if found is not None:
            return cast(T, found)  # built by the same `build` as this call's: the key names it
        value = build()
        self._cache.put(key, now, value)
        return value


class _Recent(Generic[V]):
    """Values kept `CACHE_S` from when they were built (by the caller's clock), at most `size`, the oldest
    dropped first; shared by the dashboard's threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[tuple[object, ...], tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], now: float) -> V | None:
        with self._lock:
            found = self._items.get(key)
        return found[1] if found is not None and now - found[0] < CACHE_S else None

    def put(self, key: tuple[object, ...], now: float, value: V) -> None:
        with self._lock:
            if len(self._items) >= self._size:
                del self._items[min(self._items, key=lambda k: self._items[k][0])]
            self._items[key] = (now, value)


def _plan(h0: int, h1: int, now: float) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The hours h0..h1 as whole past days (read from day summaries) and the other days' (day, first hour
    slot, last hour slot)."""
    whole = [d for d in range(h0 // 24, h1 // 24 + 1) if d * 24 >= h0 and d * 24 + 23 <= h1 and (d + 1) * DAY <= now]
    partial = [(d, max(h0, d * 24) - d * 24, min(h1, d * 24 + 23) - d * 24) for d in range(h0 // 24, h1 // 24 + 1)
               if not whole or not whole[0] <= d <= whole[-1]]
    return whole, partial


def _version(day: int, now: float) -> int:
    """What a day's hour summaries are read again on: a closed day never (0), today every hour."""
    return 0 if (day + 1) * DAY <= now else hour_of(now)


def _month_version(month: int, now: float) -> int:
    """A closed month's day summaries are read again never (0), this month's every day."""
    return 0 if rollups.month_end_day(month) * DAY <= now else int(now // DAY)


def hourly_latency(model: ReadModel, names: Sequence[str], start: float, end: float) -> dict[str, Buckets]:
    """Per target: p50/p95/p99 and availability per hour over [start, end], from the hour summaries (hours
    without one are gaps)."""
    days = list(range(hour_of(start) // 24, hour_of(end) // 24 + 1))
    keys = [model.keys.rollup_hourly(name, d) for name in names for d in days]
    values = model.values(keys)
    out = {}
    for i, name in enumerate(names):
        ts, hists, counts = [], [], []
        for j, d in enumerate(days):
            for s in rollups.decode(values[i * len(days) + j]):
                at = (d * 24 + s.slot) * HOUR
                if start - HOUR < at <= end:
                    ts.append(at)
                    hists.append(s.hist)
                    counts.append(s.counts)
        order = np.argsort(ts)
        hist = np.array(hists, dtype=np.int64).reshape(-1, rollups.HIST_BUCKETS)[order]
        quants = rollups.hist_quantiles(hist, QUANTILES)
        count = np.array(counts, dtype=np.int64).reshape(-1, rollups.STATUS_CODES)[order]
        total = count.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            availability = np.where(total > 0, 100.0 * (total - count[:, 2]) / np.maximum(total, 1), np.nan)
        out[name] = Buckets(np.array(ts, dtype=np.float64)[order],
                            {"p50": quants[:, 0], "p95": quants[:, 1], "p99": quants[:, 2],
                             "availability": availability}, HOUR, False)
    return out


@dataclass(frozen=True, slots=True)
class Period:
    """One tracked metric of one target over one hour or day of the summaries."""

    start: float
    length_s: int
    samples: int  # probe samples in the period (coverage = samples x interval / length)
    stats: rollups.MetricStats


def metric_periods(model: ReadModel, series: Sequence[tuple[str, str]], start: float, end: float,
                   hours_first: bool = False) -> dict[tuple[str, str], list[Period]]:
    """Per (target, metric): its summarised periods overlapping [start, end], oldest first: day summaries for the
    days that have one, hour summaries for the other days' hours (`hours_first`: the hours wherever they are
    still kept, days before that)."""
    targets = sorted({t for t, _ in series})
    ids = {t: {name: i for i, name in enumerate(names)} for t, names in model.rollup_names(targets).items()}
    first_day, last_day = int(start // DAY), int(end // DAY)
    months = sorted({rollups.month_of_day(d)[0] for d in range(first_day, last_day + 1)})
    covered: dict[str, set[int]] = {t: set() for t in targets}
    out: dict[tuple[str, str], list[Period]] = {key: [] for key in series}
    wanted = {t: [(m, ids[t][m]) for tt, m in series if tt == t and m in ids[t]] for t in targets}
    if hours_first:
        _hour_periods(model, [(t, d) for t in targets for d in range(first_day, last_day + 1) if wanted[t]],
                      wanted, start, end, out, covered)
    monthly = model.values([model.keys.rollup_daily(t, m) for t in targets for m in months])
    for i, t in enumerate(targets):
        for j, month in enumerate(months):
            base = rollups.month_start_day(month)
            for s in rollups.decode(monthly[i * len(months) + j]):
                day = base + s.slot
                if not first_day <= day <= last_day or day in covered[t]:
                    continue
                covered[t].add(day)
                for metric, mid in wanted[t]:
                    if mid in s.metrics:
                        out[(t, metric)].append(Period(day * DAY, DAY, s.samples, s.metrics[mid]))
    if not hours_first:
        todo = [(t, d) for t in targets for d in range(first_day, last_day + 1) if d not in covered[t] and wanted[t]]
        _hour_periods(model, todo, wanted, start, end, out, covered)
    for periods in out.values():
        periods.sort(key=lambda p: p.start)
    return out


def _hour_periods(model: ReadModel, todo: Sequence[tuple[str, int]], wanted: dict[str, list[tuple[str, int]]],
                  start: float, end: float, out: dict[tuple[str, str], list[Period]],
                  covered: dict[str, set[int]]) -> None:
    """Add the hour summaries of (target, day) pairs; a day with any is marked covered."""
    hourly = model.values([model.keys.rollup_hourly(t, d) for t, d in todo])
    for (t, d), value in zip(todo, hourly, strict=True):
        for s in rollups.decode(value):
            at = (d * 24 + s.slot) * HOUR
            covered[t].add(d)
            if at + HOUR <= start or at > end:
                continue
            for metric, mid in wanted[t]:
                if mid in s.metrics:
                    out[(t, metric)].append(Period(at, HOUR, s.samples, s.metrics[mid]))


def long_range(model: ReadModel) -> LongRange:
    """The model's long-range reader (one per ReadModel, so one per dashboard process)."""
    return model.memoized("long_range", LongRange)
