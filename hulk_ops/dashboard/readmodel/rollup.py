"""Per-hour summaries of the fleet's probe history, so long windows over a large fleet stay fast.

A history chunk (one target, one hour) stops changing once its hour is over and the writer has
flushed: `SETTLE_S` after the hour ends it is *settled*. A settled hour is read once, for every
configured target in one MGET, and kept as

- a latency histogram per target on `HIST_BUCKETS` log-spaced buckets from 0.05 ms to 300 s
  (a bucket's geometric middle is within ±3.1 % of every value in it; a value outside the range
  counts in the first or last bucket; at most 65 535 samples per target and hour);
- the number of up / degraded / down samples per target.

Hours still being written are read raw on every request, and so are the settled hours a short
window needs (kept raw while they are the previous hour). Samples written more than `SETTLE_S`
after their hour ended (a writer flushing a long store outage) are missed by a summary built before
they landed, until the dashboard restarts. Summaries older than `KEEP_HOURS` are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hulk_ops.collectors.codec import HOUR, hour_of
from hulk_ops.collectors.rollups import (  # noqa: F401  (HIST_MIDDLES, hist_quantiles: this module's API)
    HIST_BUCKETS,
    HIST_MIDDLES,
    STATUS_CODES,
    hist_bucket,
    hist_quantiles,
)
from hulk_ops.dashboard.readmodel.chunks import FlatSamples, decode_flat
from hulk_ops.dashboard.readmodel.store import ReadModel

SETTLE_S = 300.0
KEEP_HOURS = 27
RAW_CACHE_MIN_TARGETS = 32  # below this, a request reads its own chunks rather than the whole fleet's hour


def summarise(samples: FlatSamples, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(hist (n, HIST_BUCKETS) int64, counts (n, 3) int64) of flat samples."""
    measured = ~np.isnan(samples.latency)
    cells = samples.group[measured].astype(np.int64) * HIST_BUCKETS + hist_bucket(samples.latency[measured])
    hist = np.bincount(cells, minlength=n_groups * HIST_BUCKETS).reshape(n_groups, HIST_BUCKETS)
    codes = samples.group.astype(np.int64) * STATUS_CODES + np.minimum(samples.status, STATUS_CODES - 1)
    counts = np.bincount(codes, minlength=n_groups * STATUS_CODES).reshape(n_groups, STATUS_CODES)
    return hist, counts


@dataclass(frozen=True, slots=True)
class HourBlock:
    hist: np.ndarray  # (targets, HIST_BUCKETS) uint16, saturating
    counts: np.ndarray  # (targets, 3) uint32


class FleetRollup:
    """Settled-hour summaries of every configured target's probe history (thread-safe, one per process)."""

    def __init__(self, model: ReadModel) -> None:
        self.model = model
        self.names = [t.name for t in model.config.targets]
        self.index = {name: i for i, name in enumerate(self.names)}
        self._blocks: dict[int, HourBlock] = {}
        self._sums: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (first, last) settled hour -> sum
        self._raw: dict[int, list[bytes | None]] = {}  # settled previous hour, kept raw for short windows
        self._lock = threading.Lock()

    @staticmethod
    def settled(hour: int, now: float) -> bool:
        return now >= (hour + 1) * HOUR + SETTLE_S

    def block(self, hour: int) -> HourBlock:
        """The summary of a settled hour (built on first use: one MGET of every target's chunk)."""
        with self._lock:
            found = self._blocks.get(hour)
            if found is not None:
                return found
            blobs = self._raw.get(hour) or self.model.history_blobs(self.names, [hour])
            hist, counts = summarise(decode_flat(blobs, [hour], len(self.names)), len(self.names))
            block = HourBlock(np.minimum(hist, np.iinfo(np.uint16).max).astype(np.uint16), counts.astype(np.uint32))
            self._blocks[hour] = block
            for old in [h for h in self._blocks if h < hour - KEEP_HOURS]:
                del self._blocks[old]
            return block

    def blobs(self, names: Sequence[str], hours: Sequence[int], now: float) -> list[bytes | None]:
        """Raw chunks, target-major. The settled previous hour is cached for all targets; the rest is read."""
        current = hour_of(now)
        cached: dict[int, list[bytes | None]] = {}
        for hour in hours:
            if hour == current - 1 and self.settled(hour, now) and len(names) >= RAW_CACHE_MIN_TARGETS:
                cached[hour] = self._raw_hour(hour)
        wanted = [h for h in hours if h not in cached]
        fresh = self.model.history_blobs(names, wanted) if wanted else []
        out: list[bytes | None] = []
        for i, name in enumerate(names):
            for hour in hours:
                if hour in cached:
                    pos = self.index.get(name)
                    out.append(cached[hour][pos] if pos is not None else None)
                else:
                    out.append(fresh[i * len(wanted) + wanted.index(hour)])
        return out

    def _raw_hour(self, hour: int) -> list[bytes | None]:
        with self._lock:
            found = self._raw.get(hour)
            if found is None:
                found = self._raw[hour] = self.model.history_blobs(self.names, [hour])
                for old in [h for h in self._raw if h != hour]:
                    del self._raw[old]
            return found

    def window(self, names: Sequence[str], start: float, end: float, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(hist, counts) per target of `names` over the hours overlapping [start, end].

        Settled hours come from the summaries (whole hours: the first one may begin before `start`);
        hours still being written are read raw and cut at `start`/`end`.
        """
        rows = np.array([self.index[n] for n in names], dtype=np.int64)
        hours = range(hour_of(start), hour_of(end) + 1)
        settled = [h for h in hours if self.settled(h, now)]
        live = [h for h in hours if h not in settled]
        if settled:
            total_hist, total_counts = self._settled_sum(settled[0], settled[-1])
            hist, counts = total_hist[rows].astype(np.int64), total_counts[rows].astype(np.int64)
        else:
            hist = np.zeros((len(names), HIST_BUCKETS), dtype=np.int64)
            counts = np.zeros((len(names), STATUS_CODES), dtype=np.int64)
        if live:
            samples = decode_flat(self.blobs(names, live, now), live, len(names)).within(start, end)
            live_hist, live_counts = summarise(samples, len(names))
            hist += live_hist
            counts += live_counts
        return hist, counts


    def _settled_sum(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Every target's summed histogram and counts over settled hours first..last (kept until one more settles)."""
        found = self._sums.get((first, last))
        if found is not None:
            return found
        hist = np.zeros((len(self.names), HIST_BUCKETS), dtype=np.uint32)
        counts = np.zeros((len(self.names), STATUS_CODES), dtype=np.uint32)
        for hour in range(first, last + 1):
            block = self.block(hour)
            hist += block.hist
            counts += block.counts
        with self._lock:
            self._sums = {k: v for k, v in self._sums.items() if k[1] == last}  # older ends are not asked again
            self._sums[(first, last)] = (hist, counts)
        return hist, counts


def fleet_rollup(model: ReadModel) -> FleetRollup:
    """The model's rollup (one per ReadModel, so one per dashboard process)."""
    return model.memoized("fleet_rollup", FleetRollup)
