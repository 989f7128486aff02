"""Counts probe samples and down samples per target over the burn-alert windows (5 min to 6 h), from the raw
history chunks.

The hour under way and the one before are read on every call; older hours do not change any more and are
read once and kept (as sample offsets and down flags) until they leave the 6-hour window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hulk_ops.collectors.codec import HOUR, Keys, decode_samples, hour_of
from hulk_ops.collectors.redis_client import mget_any
from hulk_ops.core.burn import WINDOWS_S
from hulk_ops.core.model import STATUS_CODE

DOWN = STATUS_CODE["down"]
LONGEST_S = max(WINDOWS_S.values())


class BurnWatch:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._settled: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    async def counts(self, names: Sequence[str], now: float) -> dict[str, dict[str, tuple[int, int]]]:
        first, current = hour_of(now - LONGEST_S), hour_of(now)
        live = [h for h in (current - 1, current) if h >= first]
        wanted = [(n, h) for n in names for h in range(first, current - 1) if (n, h) not in self._settled]
        wanted += [(n, h) for n in names for h in live]
        blobs = await mget_any(self.redis, [self.keys.history(n, h) for n, h in wanted])
        fresh: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        for (name, hour), blob in zip(wanted, blobs, strict=True):
            data = decode_samples([(hour, blob)], hour * HOUR, (hour + 1) * HOUR)
            fresh[(name, hour)] = (data["ts"], data["status"] == DOWN)
            if hour < current - 1:
                self._settled[(name, hour)] = fresh[(name, hour)]
        self._settled = {k: v for k, v in self._settled.items() if k[1] >= first}
        out: dict[str, dict[str, tuple[int, int]]] = {}
        for name in names:
            found = [self._settled.get((name, h)) or fresh.get((name, h)) for h in range(first, current + 1)]
            parts = [p for p in found if p is not None]
            ts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
            down = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=bool)
            out[name] = {w: (int((ts >= now - s).sum()), int((down & (ts >= now - s)).sum()))
                         for w, s in WINDOWS_S.items()}
        return out
