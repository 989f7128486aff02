"""Bulk decoding of the store's packed hour chunks (hulk_ops/collectors/codec.py layout) into flat numpy arrays.

`codec.decode_samples` / `decode_points` decode one series; these decode thousands of chunks from
one MGET in a single `frombuffer`, tagging each row with its series' position in the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hulk_ops.collectors.codec import HOUR, POINT_DTYPE, SAMPLE_DTYPE


def _join(blobs: Sequence[bytes | None], size: int) -> tuple[bytes, np.ndarray]:
    parts, lengths = [], np.zeros(len(blobs), dtype=np.int64)
    for i, blob in enumerate(blobs):
        if blob:
            usable = len(blob) - len(blob) % size  # a torn tail (never expected) is ignored
            parts.append(blob[:usable] if usable != len(blob) else blob)
            lengths[i] = usable // size
    return b"".join(parts), lengths


@dataclass(frozen=True, slots=True)
class FlatSamples:
    """Samples of many targets in flat arrays; `group` is the target's position in the request."""

    ts: np.ndarray
    status: np.ndarray
    latency: np.ndarray
    group: np.ndarray

    def within(self, start: float, end: float) -> FlatSamples:
        keep = (self.ts >= start) & (self.ts <= end)
        return FlatSamples(self.ts[keep], self.status[keep], self.latency[keep], self.group[keep])


def decode_flat(blobs: Sequence[bytes | None], hours: Sequence[int], n_targets: int) -> FlatSamples:
    """Target-major chunks ([t0h0, t0h1, ..., t1h0, ...]) -> flat samples, in one frombuffer."""
    joined, lengths = _join(blobs, SAMPLE_DTYPE.itemsize)
    raw = np.frombuffer(joined, dtype=SAMPLE_DTYPE)
    n_hours = len(hours)
    hour_base = np.tile(np.asarray(hours, dtype=np.float64) * HOUR, n_targets)
    group = np.repeat(np.repeat(np.arange(n_targets, dtype=np.int32), n_hours), lengths)
    ts = np.repeat(hour_base, lengths) + raw["ds"] / 10.0
    return FlatSamples(ts, raw["status"].copy(), raw["latency"].astype(np.float64), group)


def decode_points_flat(blobs: Sequence[bytes | None], hours: Sequence[int], n_series: int,
                       start: float, end: float) -> list[np.ndarray]:
    """Series-major point chunks -> one (ts, value) array per series, cut to [start, end]."""
    joined, lengths = _join(blobs, POINT_DTYPE.itemsize)
    raw = np.frombuffer(joined, dtype=POINT_DTYPE)
    hour_base = np.tile(np.asarray(hours, dtype=np.float64) * HOUR, n_series)
    out = np.empty(raw.shape[0], dtype=[("ts", "<f8"), ("value", "<f4")])
    out["ts"] = np.repeat(hour_base, lengths) + raw["ds"] / 10.0
    out["value"] = raw["value"]
    per_series = lengths.reshape(n_series, len(hours)).sum(axis=1) if n_series else lengths
    parts = np.split(out, np.cumsum(per_series)[:-1]) if n_series else []
    return [p[(p["ts"] >= start) & (p["ts"] <= end)] for p in parts]
