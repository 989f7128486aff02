"""Numeric helpers for the views: grouped quantiles, time buckets (server-side downsampling), trend fits.

Everything here is pure numpy over arrays the read model decoded; nothing touches the store.
`MAX_POINTS` is the most points one chart series may carry to the browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_POINTS = 1500
NICE_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
WINDOWS_S = {"15 min": 900, "1 h": 3600, "6 h": 21600, "24 h": 86400}
QUANTILES = (0.50, 0.95, 0.99)


def group_quantiles(values: np.ndarray, groups: np.ndarray, n_groups: int,
                    qs: Sequence[float] = QUANTILES) -> np.ndarray:
    """Quantiles of `values` per group (numpy's default linear interpolation); NaN for empty groups.

    Returns an (n_groups, len(qs)) array. One sort for all groups (fast for a whole fleet): the key
    group * span + (value - min) orders by group, then value; values are recovered from the sorted
    keys within float64 rounding of the largest key (2e-16 x groups x span: 4e-9 ms for 2,000
    targets and a 10 s spread), far below any displayed digit.
    """
    out = np.full((n_groups, len(qs)), np.nan)
    if values.size == 0 or n_groups == 0:
        return out
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    low = float(values.min())
    span = float(values.max()) - low + 1.0
    offsets = groups * span
    ordered = np.sort(offsets + (values - low))
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ordered -= np.repeat(np.arange(n_groups, dtype=np.float64) * span, counts)
    ordered += low
    present = counts > 0
    first, n = starts[present], counts[present]
    for j, q in enumerate(qs):
        pos = q * (n - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = pos - lo
        a, b = ordered[first + lo], ordered[first + hi]
        # numpy's _lerp: exact at both ends of the interval
        out[present, j] = np.where(frac >= 0.5, b - (b - a) * (1 - frac), a + (b - a) * frac)
    return out


def quantiles(values: np.ndarray, qs: Sequence[float] = QUANTILES) -> tuple[float, ...]:
    """Quantiles of one array (NaN when empty)."""
    if values.size == 0:
        return tuple(math.nan for _ in qs)
    return tuple(float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), [q * 100 for q in qs]))


def bucket_width(start: float, end: float, max_points: int = MAX_POINTS) -> int:
    """The smallest 'nice' bucket width (seconds) that keeps [start, end] within max_points buckets."""
    span = max(end - start, 1.0)
    for width in NICE_WIDTHS_S:
        if span / width <= max_points:
            return width
    return math.ceil(span / max_points)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Time buckets of a series: bucket start times and the aggregated columns (same length)."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]
    width_s: int
    raw: bool  # True: the points themselves (few enough), no aggregation

    def __len__(self) -> int:
        return int(self.ts.size)


def bucketize(ts: np.ndarray, values: np.ndarray, start: float, end: float, max_points: int = MAX_POINTS,
              how: str = "mean", qs: Sequence[float] = QUANTILES) -> Buckets:
    """Downsample (ts, value) to at most max_points points: the raw points when few enough, else buckets.

    how: "mean" -> columns mean/min/max; "quantiles" -> columns p50/p95/p99 (per qs) and max.
    Empty buckets are left out (a gap in the chart, not a zero).
    """
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values) & (ts >= start) & (ts <= end)
    ts, values = ts[keep], values[keep]
    if ts.size <= max_points:
        cols = {"mean": values, "min": values, "max": values} if how == "mean" else {
            **{qname(q): values for q in qs}, "max": values}
        return Buckets(ts, cols, 0, True)
    width = bucket_width(start, end, max_points)
    origin = math.floor(start / width) * width
    idx = ((ts - origin) // width).astype(np.int64)
    n = int(idx.max()) + 1
    counts = np.bincount(idx, minlength=n)
    present = counts > 0
    bucket_ts = origin + np.nonzero(present)[0] * width
    maxima = np.full(n, -np.inf)
    np.maximum.at(maxima, idx, values)
    if how == "mean":
        sums = np.bincount(idx, weights=values, minlength=n)
        minima = np.full(n, np.inf)
        np.minimum.at(minima, idx, values)
        cols = {"mean": sums[present] / counts[present], "min": minima[present], "max": maxima[present]}
    else:
        qv = group_quantiles(values, idx, n, qs)[present]
        cols = {qname(q): qv[:, j] for j, q in enumerate(qs)} | {"max": maxima[present]}
    return Buckets(bucket_ts, cols, width, False)


def qname(q: float) -> str:
    return f"p{round(q * 100):d}"


@dataclass(frozen=True, slots=True)
class Fit:
    """Least-squares line value = intercept + slope * (t - t0); slope per second."""

    slope: float
    intercept: float
    t0: float
    n: int

    def at(self, t: float) -> float:
        return self.intercept + self.slope * (t - self.t0)


class FitSums:
    """Sufficient statistics of a least-squares line, mergeable across chunks (times relative to t0)."""

    __slots__ = ("n", "sx", "sxx", "sxy", "sy", "t0")

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = 0.0

    def add_points(self, ts: np.ndarray, values: np.ndarray) -> FitSums:
        x = np.asarray(ts, dtype=np.float64) - self.t0
        y = np.asarray(values, dtype=np.float64)
        self.n += int(x.size)
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float((x * x).sum())
        self.sxy += float((x * y).sum())
        return self

    def add(self, other: FitSums) -> FitSums:
        d = other.t0 - self.t0  # shift the other's times onto this origin
        self.n += other.n
        self.sx += other.sx + other.n * d
        self.sy += other.sy
        self.sxx += other.sxx + 2 * d * other.sx + other.n * d * d
        self.sxy += other.sxy + d * other.sy
        return self

    def fit(self) -> Fit | None:
        if self.n < 2:
            return None
        denom = self.n * self.sxx - self.sx * self.sx
        if denom <= 1e-9 * max(1.0, self.n * self.sxx):
            return None  # all points at one time
        slope = (self.n * self.sxy - self.sx * self.sy) / denom
        intercept = (self.sy - slope * self.sx) / self.n
        return Fit(slope, intercept, self.t0, self.n)


def linear_fit(ts: np.ndarray, values: np.ndarray) -> Fit | None:
    ts = np.asarray(ts, dtype=np.float64)
    if ts.size < 2:
        return None
    return FitSums(float(ts[0])).add_points(ts, values).fit()
