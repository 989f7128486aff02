"""Least-squares trends of tracked metrics over a window, for many series at once.

The fit of a window only needs five sums per series (`series.FitSums`), and the sums of a
settled hour (see `rollup.SETTLE_S`) never change: they are computed once per (series, hour) and
kept. Hours still being written are read raw. The window starts at the top of its first hour.
Results are reused for `TTL_S` seconds: a trend measured in days does not move in half a minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hulk_ops.collectors.codec import HOUR, POINT_DTYPE, hour_of
from hulk_ops.dashboard.readmodel.rollup import KEEP_HOURS, FleetRollup
from hulk_ops.dashboard.readmodel.series import Fit, FitSums
from hulk_ops.dashboard.readmodel.store import ReadModel

TTL_S = 30.0
Series = tuple[str, str]  # (target, metric)


@dataclass(frozen=True, slots=True)
class TrendSet:
    fits: dict[Series, Fit | None]
    start: float
    computed_at: float


def _sums(blob: bytes | None, hour: int) -> FitSums:
    sums = FitSums(float(hour * HOUR))
    if blob:
        usable = len(blob) - len(blob) % POINT_DTYPE.itemsize
        raw = np.frombuffer(blob[:usable], dtype=POINT_DTYPE)
        values = raw["value"].astype(np.float64)
        keep = np.isfinite(values)
        sums.add_points(hour * HOUR + raw["ds"][keep] / 10.0, values[keep])
    return sums


class TrendCache:
    def __init__(self, model: ReadModel) -> None:
        self.model = model
        self._hours: dict[tuple[str, str, int], FitSums] = {}
        self._results: dict[tuple[float, tuple[Series, ...]], TrendSet] = {}
        self._lock = threading.Lock()

    def fits(self, series: Sequence[Series], window_s: float, now: float | None = None) -> TrendSet:
        now = time.time() if now is None else now
        key = (window_s, tuple(series))
        with self._lock:
            found = self._results.get(key)
            if found is not None and now - found.computed_at < TTL_S:
                return found
            result = self._compute(list(series), window_s, now)
            self._results = {k: v for k, v in self._results.items() if now - v.computed_at < TTL_S}
            self._results[key] = result
            return result

    def _compute(self, series: list[Series], window_s: float, now: float) -> TrendSet:
        if window_s > LONG_AFTER_S:
            return _long_fits(self.model, series, window_s, now)
        first, last = hour_of(now - window_s), hour_of(now)
        settled = [h for h in range(first, last + 1) if FleetRollup.settled(h, now)]
        live = [h for h in range(first, last + 1) if h not in settled]
        missing = [(s, h) for s in series for h in settled if (*s, h) not in self._hours]
        if missing:
            blobs = self.model.metric_chunks([(t, m, h) for (t, m), h in missing])
            for ((target, metric), hour), blob in zip(missing, blobs, strict=True):
                self._hours[(target, metric, hour)] = _sums(blob, hour)
        live_blobs = self.model.metric_blobs(series, live) if live else []
        start = float(first * HOUR)
        fits: dict[Series, Fit | None] = {}
        for i, (target, metric) in enumerate(series):
            total = FitSums(start)
            for hour in settled:
                total.add(self._hours[(target, metric, hour)])
            for j, hour in enumerate(live):
                total.add(_sums(live_blobs[i * len(live) + j], hour))
            fits[(target, metric)] = total.fit()
        for old in [k for k in self._hours if k[2] < last - KEEP_HOURS]:
            del self._hours[old]
        return TrendSet(fits, start, now)


LONG_AFTER_S = 86_400 + 1  # longer windows fit the hour (else day) summaries' means


def long_points(model: ReadModel, series: Sequence[Series], start: float, end: float
                ) -> dict[Series, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per series: (mid-period times, means, mins, maxes) of its summarised periods in [start, end]."""
    from hulk_ops.dashboard.readmodel.longrange import metric_periods

    periods = metric_periods(model, series, start, end, hours_first=True)
    out = {}
    for key in series:
        found = [p for p in periods.get(key, []) if p.start >= start - p.length_s]
        out[key] = (np.array([p.start + p.length_s / 2 for p in found], dtype=np.float64),
                    np.array([p.stats.mean for p in found], dtype=np.float64),
                    np.array([p.stats.min for p in found], dtype=np.float64),
                    np.array([p.stats.max for p in found], dtype=np.float64))
    return out


def _long_fits(model: ReadModel, series: list[Series], window_s: float, now: float) -> TrendSet:
    """Least squares through one point per summarised hour (its mean at its middle), days where the hours are
    no longer kept."""
    start = float(hour_of(now - window_s) * HOUR)
    fits: dict[Series, Fit | None] = {}
    for key, (ts, means, _mins, _maxes) in long_points(model, series, start, now).items():
        keep = np.isfinite(means)
        fits[key] = FitSums(start).add_points(ts[keep], means[keep]).fit()
    return TrendSet(fits, start, now)


def trend_cache(model: ReadModel) -> TrendCache:
    return model.memoized("trends", TrendCache)
