"""Key layout and encodings of the Redis store, shared by the collector (writer) and the dashboard (reader).

History is kept in per-hour binary chunks, one Redis string per target and hour, grown with APPEND
and expired after the retention: 7 bytes per probe sample (deciseconds into the hour, status code,
latency as float32) and 6 bytes per tracked-metric sample. Reading a day is one MGET of 24 keys.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hulk_ops.core.model import STATUS_CODE

SAMPLE = struct.Struct("<HBf")  # deciseconds into the hour, status code, latency ms (NaN: none)
POINT = struct.Struct("<Hf")  # deciseconds into the hour, value
SAMPLE_DTYPE = np.dtype([("ds", "<u2"), ("status", "u1"), ("latency", "<f4")])
POINT_DTYPE = np.dtype([("ds", "<u2"), ("value", "<f4")])
HOUR = 3600


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "hulk:"

    @property
    def latest(self) -> str:
        return f"{self.prefix}latest"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def collectors(self) -> str:
        return f"{self.prefix}collectors"

    @property
    def discovered(self) -> str:
        """JSON list of the discovered targets' public settings (no secrets), for the dashboard."""
        return f"{self.prefix}discovered"

    @property
    def breakers(self) -> str:
        return f"{self.prefix}breakers"

    @property
    def last_write(self) -> str:
        return f"{self.prefix}last_write"

    def batch_mark(self, writer: str) -> str:
        """Sequence number of the newest batch a collector's writer stored (exactly-once retries)."""
        return f"{self.prefix}wb:{writer}"

    def target_events(self, target: str) -> str:
        return f"{self.prefix}ev:{target}"

    def history(self, target: str, hour: int) -> str:
        return f"{self.prefix}h:{target}:{hour}"

    def metric(self, target: str, metric: str, hour: int) -> str:
        return f"{self.prefix}m:{target}:{metric}:{hour}"

    def series(self, name: str, hour: int) -> str:
        """A named series pulled from elsewhere (e.g. a Prometheus query)."""
        return f"{self.prefix}s:{name}:{hour}"

    def series_index(self) -> str:
        return f"{self.prefix}series"

    def metric_index(self, target: str) -> str:
        return f"{self.prefix}mi:{target}"

    def rollup_hourly(self, target: str, day: int) -> str:
        """A target's hour summaries of one day (unix day number): `hulk_ops.collectors.rollups`."""
        return f"{self.prefix}rh:{{{target}}}:{day}"

    def rollup_daily(self, target: str, month: int) -> str:
        """A target's day summaries of one month (year * 12 + month - 1)."""
        return f"{self.prefix}rd:{{{target}}}:{month}"

    def rollup_names(self, target: str) -> str:
        """The target's tracked metric names, in the order summaries number them."""
        return f"{self.prefix}rn:{{{target}}}"


def hour_of(ts: float) -> int:
    return int(ts // HOUR)


def encode_sample(ts: float, status: str, latency_ms: float | None) -> bytes:
    ds = int((ts % HOUR) * 10 + 1e-6)  # epsilon: 0.3 s must not become 2.9999 ds
    return SAMPLE.pack(min(ds, 35_999), STATUS_CODE[status], float("nan") if latency_ms is None else latency_ms)


def encode_point(ts: float, value: float) -> bytes:
    ds = int((ts % HOUR) * 10 + 1e-6)  # epsilon: 0.3 s must not become 2.9999 ds
    return POINT.pack(min(ds, 35_999), value)


def hours_between(start: float, end: float) -> list[int]:
    return list(range(hour_of(start), hour_of(end) + 1))


def decode_samples(chunks: list[tuple[int, bytes | None]], start: float, end: float) -> np.ndarray:
    """Chunks of (hour, bytes) -> structured array with ts (float64 seconds), status, latency."""
    return _decode(chunks, start, end, SAMPLE_DTYPE, ("status", "latency"))


def decode_points(chunks: list[tuple[int, bytes | None]], start: float, end: float) -> np.ndarray:
    return _decode(chunks, start, end, POINT_DTYPE, ("value",))


def _decode(
    chunks: list[tuple[int, bytes | None]], start: float, end: float, dtype: np.dtype, fields: tuple[str, ...]
) -> np.ndarray:
    out_dtype = np.dtype([("ts", "<f8")] + [(f, dtype[f]) for f in fields])
    parts = []
    for hour, blob in chunks:
        if not blob:
            continue
        usable = len(blob) - len(blob) % dtype.itemsize  # a torn tail (never expected) is ignored
        raw = np.frombuffer(blob[:usable], dtype=dtype)
        part = np.empty(raw.shape[0], dtype=out_dtype)
        part["ts"] = hour * HOUR + raw["ds"] / 10.0
        for f in fields:
            part[f] = raw[f]
        parts.append(part)
    if not parts:
        return np.empty(0, dtype=out_dtype)
    data = np.concatenate(parts)
    mask = (data["ts"] >= start) & (data["ts"] <= end)
    return data[mask]
