"""Key layout and encodings of the Redis store, shared by the collector (writer) and the dashboard (reader).

History is kept in per-hour binary chunks, one Redis string per target and hour, grown with APPEND
and expired after the retention: 7 bytes per probe sample (deciseconds into the hour, status code,
latency as float32) and 6 bytes per tracked-metric sample. Reading a day is one MGET of 24 keys.

Every key of one target carries the target's name as a Redis Cluster hash tag (`hulk:h:{redis-a}:493210`):
on a cluster a target's keys share one slot, so a day's MGET and a batch's part for that target are
single-slot. Keys written or read together across targets have a tag of their own (`{shard}`, `{notify}`,
`{radar}`); fleet-wide keys (latest, events, collectors, ...) are single keys, each in its own slot. Prefixes
cannot contain braces (config), so the tag is always the first `{...}` of a key.
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


def tagged(tag: str) -> str:
    """`tag` as a Redis Cluster hash tag: keys with the same tag share a slot."""
    return "{" + tag + "}"


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes for `key`: the content of its first non-empty `{...}`, else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


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

    def batch_mark(self, writer: str, tag: str | None = None) -> str:
        """Sequence number of the newest batch a collector's writer stored (exactly-once retries). On a cluster
        a batch is written per slot, each part with its own mark in the part's slot: `tag` is that slot's
        hash tag (`hash_tag()` of one of the part's keys)."""
        if tag is None:
            return f"{self.prefix}wb:{writer}"
        return f"{self.prefix}wb:{tagged(tag)}:{writer}"

    def target_events(self, target: str) -> str:
        return f"{self.prefix}ev:{tagged(target)}"

    def history(self, target: str, hour: int) -> str:
        return f"{self.prefix}h:{tagged(target)}:{hour}"

    def metric(self, target: str, metric: str, hour: int) -> str:
        return f"{self.prefix}m:{tagged(target)}:{metric}:{hour}"

    def series(self, name: str, hour: int) -> str:
        """A named series pulled from elsewhere (e.g. a Prometheus query)."""
        return f"{self.prefix}s:{tagged(name)}:{hour}"

    def series_index(self) -> str:
        return f"{self.prefix}series"

    def metric_index(self, target: str) -> str:
        return f"{self.prefix}mi:{tagged(target)}"

    # sharding leases: one Lua script reads the index and every member's lease, so they share a slot
    @property
    def shard_members(self) -> str:
        return f"{self.prefix}{tagged('shard')}:members"

    @property
    def shard_member_prefix(self) -> str:
        return f"{self.prefix}{tagged('shard')}:member:"

    def shard_member(self, replica: str) -> str:
        return self.shard_member_prefix + replica

    # the technology radar's rings: a move updates the rings and the moves list in one MULTI/EXEC
    def radar(self, name: str) -> str:
        """`rings`, `file_rings` or `moves`."""
        return f"{self.prefix}{tagged('radar')}:{name}"

    def radar_digest(self, day: str) -> str:
        """The claim of one day's radar digest (SET NX)."""
        return f"{self.prefix}radar:digest:{day}"

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
