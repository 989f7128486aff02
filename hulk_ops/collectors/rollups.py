"""The long-range tier's format: per target, one summary per hour and one per day.

A summary holds the probe samples' status counts (up / degraded / down), a latency histogram and
min/mean/max/last of every tracked metric (float32; rounded to 16 mantissa bits, within 0.0015 %, once
compacted). The histogram has `HIST_BUCKETS` log-spaced buckets from
0.05 ms to 300 s: a bucket's geometric middle is within ±3.1 % of every value in it, so percentiles
read from it are within ±3.1 % (a value outside the range counts in the first or last bucket; a
bucket's count saturates at 65,535 per summary).

Layout in Redis (all keys of one target share its hash tag):
- hourly: `rh:{target}:<day>`, the day's hour summaries (slot = hour of the day), kept
  `hourly_days` after the day;
- daily: `rd:{target}:<month>` (month = year * 12 + month - 1), the month's day summaries (slot = day
  of the month - 1), kept `daily_days` after the month;
- `rn:{target}`: the target's tracked metric names; a summary names a metric by its position here.

A value is `mask (u32) | form (u8) | body`. The mask has bit `slot` set once that slot's summary is in
the value, and the Lua script that appends a summary sets it in the same step, so a slot is written
at most once whoever writes it (sharded replicas, restarts, rebuilds). Form 0: the body is summaries
one after another. Form 1 (a closed period, compacted once): `u32 length | zlib(summaries) | summaries
appended later` where the compressed part holds the summaries column by column, each column byte plane by
byte plane (exponents and high bytes line up and compress).

A summary: `slot u8 | pairs u16 | metrics u8 | up u32 | degraded u32 | down u32`, then `pairs` times
`bucket u8 | count u16`, then `metrics` times `id u16 | min f32 | mean f32 | max f32 | last f32`.
Fixed widths, so a window's worth decodes with numpy rather than record by record.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

HIST_BUCKETS = 256
HIST_LO_MS = 0.05
HIST_HI_MS = 300_000.0
_LOG_RATIO = math.log(HIST_HI_MS / HIST_LO_MS) / HIST_BUCKETS
HIST_MIDDLES = HIST_LO_MS * np.exp((np.arange(HIST_BUCKETS) + 0.5) * _LOG_RATIO)
HIST_ERROR_PCT = 3.1
STATUS_CODES = 3  # up, degraded, down (hulk_ops.core.model.STATUS_CODE)
COUNT_MAX = 65_535
SLOTS = 32  # slots per value: days of a month (31) or hours of a day (24)

HEAD = struct.Struct("<IB")  # mask, form
HEADER = struct.Struct("<BHBIII")  # slot, pairs, metrics, up, degraded, down
PAIR_DTYPE = np.dtype([("bucket", "u1"), ("count", "<u2")])
METRIC_DTYPE = np.dtype([("id", "<u2"), ("min", "<f4"), ("mean", "<f4"), ("max", "<f4"), ("last", "<f4")])
DAY = 86_400
HOUR = 3_600

# Append one summary unless its slot is taken (KEYS[1]; ARGV: slot, summary, expire-at unix seconds).
# Returns 1 when written, 0 when the slot already had one.
APPEND_LUA = """
local head = redis.call('GETRANGE', KEYS[1], 0, 4)
local slot = tonumber(ARGV[1])
local bitv = bit.lshift(1, slot)
if #head < 5 then
  redis.call('SET', KEYS[1], struct.pack('<i4B', bitv, 0) .. ARGV[2])
else
  local mask = struct.unpack('<i4', head)
  if bit.band(mask, bitv) ~= 0 then return 0 end
  redis.call('SETRANGE', KEYS[1], 0, struct.pack('<i4', bit.bor(mask, bitv)))
  redis.call('APPEND', KEYS[1], ARGV[2])
end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# Replace a form-0 value by its compacted form if it is still exactly what was read (KEYS[1]; ARGV: the
# value read, the compacted value). Returns 1 when replaced.
COMPACT_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# The position of a metric name in the target's list, added when new (KEYS[1]; ARGV: name, expire seconds).
NAME_ID_LUA = """
local pos = redis.call('LPOS', KEYS[1], ARGV[1])
if not pos then pos = redis.call('RPUSH', KEYS[1], ARGV[1]) - 1 end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return pos
"""


def hist_bucket(latency_ms: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.floor(np.log(np.maximum(latency_ms, 1e-12) / HIST_LO_MS) / _LOG_RATIO)
    return np.clip(idx, 0, HIST_BUCKETS - 1).astype(np.int64)


def hist_quantiles(hist: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Approximate quantiles per row of a histogram, interpolated like numpy's default (linear).

    The samples at ranks floor(q*(n-1)) and the one after are taken as their buckets' middles, so
    each is within ±3.1 % and so is the value between them.
    """
    out = np.full((hist.shape[0], len(qs)), np.nan)
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1] if hist.shape[1] else np.zeros(hist.shape[0])
    present = total > 0
    cum, n = cum[present], total[present]
    for j, q in enumerate(qs):
        pos = q * (n - 1)
        lo = np.floor(pos)
        hi = np.minimum(lo + 1, n - 1)
        a = HIST_MIDDLES[(cum > lo[:, None]).argmax(axis=1)]
        b = HIST_MIDDLES[(cum > hi[:, None]).argmax(axis=1)]
        out[present, j] = a + (b - a) * (pos - lo)
    return out


@dataclass(frozen=True, slots=True)
class MetricStats:
    min: float
    mean: float
    max: float
    last: float


@dataclass(slots=True)
class Summary:
    """One target's hour or day."""

    slot: int
    counts: np.ndarray  # (3,) int64: up, degraded, down
    hist: np.ndarray  # (HIST_BUCKETS,) int64
    metrics: dict[int, MetricStats] = field(default_factory=dict)  # metric id -> stats

    @property
    def samples(self) -> int:
        return int(self.counts.sum())


def summarise(slot: int, status: np.ndarray, latency: np.ndarray,
              metrics: dict[int, np.ndarray] | None = None) -> Summary:
    """The summary of one target's raw samples (status codes, latencies in ms with NaN for none) and metric
    points (id -> values in time order)."""
    counts = np.bincount(np.minimum(status.astype(np.int64), STATUS_CODES - 1), minlength=STATUS_CODES)
    measured = latency[~np.isnan(latency)]
    hist = np.bincount(hist_bucket(measured), minlength=HIST_BUCKETS).astype(np.int64)
    stats = {}
    for mid, values in (metrics or {}).items():
        values = values[np.isfinite(values)]
        if values.size:
            stats[mid] = MetricStats(float(values.min()), float(values.mean()), float(values.max()), float(values[-1]))
    return Summary(slot, counts.astype(np.int64), hist, stats)


def merge(slot: int, parts: Sequence[Summary]) -> Summary:
    """A day from its hours: counts and histograms add up; a metric's mean is the mean of the hours' means
    (every hour weighs the same), its last is the latest hour's."""
    counts = np.zeros(STATUS_CODES, dtype=np.int64)
    hist = np.zeros(HIST_BUCKETS, dtype=np.int64)
    seen: dict[int, list[MetricStats]] = {}
    for part in sorted(parts, key=lambda p: p.slot):
        counts += part.counts
        hist += part.hist
        for mid, s in part.metrics.items():
            seen.setdefault(mid, []).append(s)
    stats = {mid: MetricStats(min(s.min for s in ss), sum(s.mean for s in ss) / len(ss), max(s.max for s in ss),
                              ss[-1].last) for mid, ss in seen.items()}
    return Summary(slot, counts, hist, stats)


def encode(summary: Summary) -> bytes:
    nonzero = np.flatnonzero(summary.hist)
    pairs = np.empty(nonzero.size, dtype=PAIR_DTYPE)
    pairs["bucket"] = nonzero
    pairs["count"] = np.minimum(summary.hist[nonzero], COUNT_MAX)
    metrics = np.empty(len(summary.metrics), dtype=METRIC_DTYPE)
    for i, (mid, s) in enumerate(sorted(summary.metrics.items())):
        metrics[i] = (mid, s.min, s.mean, s.max, s.last)
    up, degraded, down = (int(c) for c in summary.counts)
    return HEADER.pack(summary.slot, nonzero.size, len(summary.metrics), up, degraded, down) + \
        pairs.tobytes() + metrics.tobytes()


HEADER_DTYPE = np.dtype([("slot", "u1"), ("pairs", "<u2"), ("metrics", "u1"), ("up", "<u4"), ("degraded", "<u4"),
                         ("down", "<u4")])


@dataclass(frozen=True, slots=True)
class Columns:
    """The summaries of a value as arrays: one row per summary in `heads`, its pairs and metrics flat, tagged
    with the summary's row."""

    heads: np.ndarray  # HEADER_DTYPE
    pair_row: np.ndarray
    bucket: np.ndarray
    count: np.ndarray
    metric_row: np.ndarray
    metrics: np.ndarray  # METRIC_DTYPE

    @classmethod
    def empty(cls) -> Columns:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=HEADER_DTYPE), none, none, none, none, np.zeros(0, dtype=METRIC_DTYPE))


def _planes(array: np.ndarray) -> bytes:
    """The bytes of a fixed-width array, byte plane by byte plane (what compresses: exponents, high bytes)."""
    width = array.dtype.itemsize
    return np.frombuffer(array.tobytes(), dtype=np.uint8).reshape(-1, width).T.tobytes() if array.size else b""


def _unplanes(data: bytes, pos: int, count: int, dtype: np.dtype) -> tuple[np.ndarray, int]:
    width = dtype.itemsize
    size = count * width
    raw = np.frombuffer(data, dtype=np.uint8, count=size, offset=pos).reshape(width, count).T.copy()
    return raw.view(dtype).reshape(count), pos + size


def _columns_of_records(data: bytes) -> Columns:
    """Form-0 summaries, one after another: headers walked in Python, their bytes gathered and read by numpy
    in one go per column."""
    heads, pairs, metrics = [], [], []
    pos, end = 0, len(data)
    size, pair_size, metric_size = HEADER.size, PAIR_DTYPE.itemsize, METRIC_DTYPE.itemsize
    while pos + size <= end:
        _slot, npairs, nmetrics, _up, _degraded, _down = HEADER.unpack_from(data, pos)
        heads.append(data[pos:pos + size])
        pos += size
        pairs.append(data[pos:pos + npairs * pair_size])
        pos += npairs * pair_size
        metrics.append(data[pos:pos + nmetrics * metric_size])
        pos += nmetrics * metric_size
    if not heads:
        return Columns.empty()
    head_arr = np.frombuffer(b"".join(heads), dtype=HEADER_DTYPE)
    pair_arr = np.frombuffer(b"".join(pairs), dtype=PAIR_DTYPE)
    metric_arr = np.frombuffer(b"".join(metrics), dtype=METRIC_DTYPE)
    rows = np.arange(head_arr.size)
    return Columns(head_arr, np.repeat(rows, head_arr["pairs"].astype(np.int64)), pair_arr["bucket"].astype(np.int64),
                   pair_arr["count"].astype(np.int64), np.repeat(rows, head_arr["metrics"].astype(np.int64)),
                   metric_arr)


def _pack_columns(cols: Columns) -> bytes:
    """Columnar form of summaries: count, headers, buckets (delta within a summary), counts, metrics, each
    byte-plane by byte-plane."""
    starts = np.concatenate([[0], np.cumsum(cols.heads["pairs"].astype(np.int64))])[:-1]
    delta = cols.bucket.copy()
    if delta.size:
        delta[1:] -= cols.bucket[:-1]
        delta[starts[cols.heads["pairs"] > 0]] = cols.bucket[starts[cols.heads["pairs"] > 0]]
    return (struct.pack("<I", cols.heads.size) + _planes(cols.heads) + delta.astype(np.uint8).tobytes()
            + _planes(cols.count.astype("<u2")) + _planes(_rounded(cols.metrics)))


def _rounded(metrics: np.ndarray) -> np.ndarray:
    """Metric values rounded to 16 mantissa bits (relative error <= 2^-16 = 0.0015 %): the low byte of every
    float is then zero and compresses away, a fifth of a compacted value."""
    out = metrics.copy()
    for name in ("min", "mean", "max", "last"):
        bits = out[name].view("<u4")
        finite = np.isfinite(out[name])
        rounded = ((bits.astype(np.uint64) + 0x80) & 0xFFFFFF00).astype(np.uint32)
        bits[finite] = rounded[finite]
    return out


def _unpack_columns(data: bytes) -> Columns:
    (n,) = struct.unpack_from("<I", data)
    heads, pos = _unplanes(data, 4, n, HEADER_DTYPE)
    npairs = heads["pairs"].astype(np.int64)
    total_pairs = int(npairs.sum())
    delta = np.frombuffer(data, dtype=np.uint8, count=total_pairs, offset=pos).astype(np.int64)
    pos += total_pairs
    rows = np.arange(n)
    pair_row = np.repeat(rows, npairs)
    starts = np.concatenate([[0], np.cumsum(npairs)])[:-1]
    cum = np.cumsum(delta)  # buckets restart at every summary's first pair
    has = npairs > 0
    base = np.repeat(cum[starts[has]] - delta[starts[has]], npairs[has])
    bucket = cum - base
    count, pos = _unplanes(data, pos, total_pairs, np.dtype("<u2"))
    nmetrics = heads["metrics"].astype(np.int64)
    metrics, pos = _unplanes(data, pos, int(nmetrics.sum()), METRIC_DTYPE)
    return Columns(heads, pair_row, bucket, count.astype(np.int64), np.repeat(rows, nmetrics), metrics)


def _concat(parts: Sequence[Columns]) -> Columns:
    parts = [p for p in parts if p.heads.size]
    if not parts:
        return Columns.empty()
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [p.heads.size for p in parts])[:-1]
    # structured arrays joined as bytes: np.concatenate promotes their dtypes part by part, ~100x slower
    return Columns(_joined(p.heads for p in parts),
                   np.concatenate([p.pair_row + o for p, o in zip(parts, offsets, strict=True)]),
                   np.concatenate([p.bucket for p in parts]), np.concatenate([p.count for p in parts]),
                   np.concatenate([p.metric_row + o for p, o in zip(parts, offsets, strict=True)]),
                   _joined(p.metrics for p in parts))


def _joined(arrays: Iterable[np.ndarray]) -> np.ndarray:
    arrays = list(arrays)
    return np.frombuffer(b"".join(a.tobytes() for a in arrays), dtype=arrays[0].dtype)


def columns(value: bytes | None) -> Columns:
    """Every summary of a stored value (at most one per slot: the mask guarantees it), as arrays."""
    if not value or len(value) < HEAD.size:
        return Columns.empty()
    _mask, form = HEAD.unpack_from(value)
    body = value[HEAD.size:]
    if form == 0:
        return _columns_of_records(body)
    (length,) = struct.unpack_from("<I", body)
    packed = _unpack_columns(zlib.decompress(body[4:4 + length]))
    return _concat([packed, _columns_of_records(body[4 + length:])])


def mask_of(value: bytes | None) -> int:
    if not value or len(value) < 4:
        return 0
    return struct.unpack_from("<I", value)[0]


def compacted(value: bytes) -> bytes | None:
    """The compacted form of a form-0 value (None when it already is compacted or holds nothing)."""
    if len(value) <= HEAD.size:
        return None
    mask, form = HEAD.unpack_from(value)
    if form != 0:
        return None
    packed = zlib.compress(_pack_columns(_columns_of_records(value[HEAD.size:])), 9)
    return HEAD.pack(mask, 1) + struct.pack("<I", len(packed)) + packed


def decode(value: bytes | None) -> list[Summary]:
    """Every summary of a stored value, as objects (for a few values: merging a day, charting hours)."""
    cols = columns(value)
    out = []
    for i, head in enumerate(cols.heads):
        hist = np.zeros(HIST_BUCKETS, dtype=np.int64)
        keep = cols.pair_row == i
        hist[cols.bucket[keep]] = cols.count[keep]
        stats = {int(m["id"]): MetricStats(float(m["min"]), float(m["mean"]), float(m["max"]), float(m["last"]))
                 for m in cols.metrics[cols.metric_row == i]}
        counts = np.array([head["up"], head["degraded"], head["down"]], dtype=np.int64)
        out.append(Summary(int(head["slot"]), counts, hist, stats))
    return out


def totals(values: Iterable[bytes | None], rows: Iterable[int], n_rows: int,
           slots: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(hist (n_rows, HIST_BUCKETS), counts (n_rows, 3)) summed over the summaries of `values`, each added
    to its row; `slots` (first, last), when given, keeps only the summaries of those slots."""
    hist, counts, _ = _sums(_histogram_columns(values, rows), n_rows, slots, per_slot=False)
    return hist, counts


def totals_by_slot(values: Sequence[bytes | None], slots: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`totals` with one row per value, and the values' `slot_counts` (every slot) from the same decoding."""
    n = len(values)
    hist, counts, per_slot = _sums(_histogram_columns(values, range(n)), n, slots, per_slot=True)
    return hist, counts, per_slot


def _sums(columns: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], n_rows: int,
          slots: tuple[int, int] | None, per_slot: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first, last = slots if slots is not None else (0, 255)
    hist = np.zeros(n_rows * HIST_BUCKETS, dtype=np.int64)
    counts = np.zeros((n_rows, STATUS_CODES), dtype=np.int64)
    heads, owner, bucket, count = columns
    by_slot = _by_slot(heads, owner, n_rows) if per_slot else np.zeros((0, SLOTS, STATUS_CODES), dtype=np.int64)
    if not heads.size:
        return hist.reshape(n_rows, HIST_BUCKETS), counts, by_slot
    keep = (heads["slot"] >= first) & (heads["slot"] <= last)
    for j, name in enumerate(("up", "degraded", "down")):
        counts[:, j] = np.bincount(owner[keep], weights=heads[name][keep], minlength=n_rows)
    npairs = heads["pairs"].astype(np.int64)
    pair_keep = np.repeat(keep, npairs)
    cells = np.repeat(owner, npairs)[pair_keep] * HIST_BUCKETS + bucket[pair_keep]
    hist += np.bincount(cells, weights=count[pair_keep], minlength=n_rows * HIST_BUCKETS).astype(np.int64)
    return hist.reshape(n_rows, HIST_BUCKETS), counts, by_slot


def _histogram_columns(values: Iterable[bytes | None], rows: Iterable[int], pairs: bool = True
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The headers (HEADER_DTYPE), their rows, and the (bucket, count) pairs in header order (`pairs`: else
    none), of every summary of `values`, metrics skipped. The values' byte planes and records are gathered as
    bytes in Python and read by numpy once for all values: per-value numpy calls would cost more than the data."""
    head_planes: list[list[bytes]] = [[] for _ in range(HEADER_DTYPE.itemsize)]
    deltas, count_lo, count_hi = [], [], []
    record_heads, record_pairs = [], []
    packed_rows, record_rows = [], []
    size, pair_size, metric_size = HEADER.size, PAIR_DTYPE.itemsize, METRIC_DTYPE.itemsize
    for value, row in zip(values, rows, strict=True):
        if not value or len(value) < HEAD.size:
            continue
        _mask, form = HEAD.unpack_from(value)
        pos = HEAD.size
        if form != 0:
            (length,) = struct.unpack_from("<I", value, pos)
            packed = zlib.decompress(value[pos + 4:pos + 4 + length])
            pos += 4 + length
            (n,) = struct.unpack_from("<I", packed)
            at = 4
            for plane in head_planes:
                plane.append(packed[at:at + n])
                at += n
            if pairs:  # their number (u16) is planes 1 (low byte) and 2 (high byte) of the headers
                total = sum(packed[4 + n:4 + 2 * n]) + 256 * sum(packed[4 + 2 * n:4 + 3 * n])
                deltas.append(packed[at:at + total])
                count_lo.append(packed[at + total:at + 2 * total])
                count_hi.append(packed[at + 2 * total:at + 3 * total])
            packed_rows.append((row, n))
        while pos + size <= len(value):
            _slot, npairs, nmetrics, _up, _degraded, _down = HEADER.unpack_from(value, pos)
            record_heads.append(value[pos:pos + size])
            pos += size
            if pairs:
                record_pairs.append(value[pos:pos + npairs * pair_size])
            pos += npairs * pair_size + nmetrics * metric_size
            record_rows.append(row)
    packed_n = sum(n for _, n in packed_rows)
    if packed_n:
        planes = np.frombuffer(b"".join(b"".join(plane) for plane in head_planes), dtype=np.uint8)
        packed_heads = planes.reshape(HEADER_DTYPE.itemsize, packed_n).T.copy().view(HEADER_DTYPE).reshape(packed_n)
        packed_owner = np.repeat(np.array([r for r, _ in packed_rows], dtype=np.int64),
                                 np.array([n for _, n in packed_rows], dtype=np.int64))
    else:
        packed_heads = np.zeros(0, dtype=HEADER_DTYPE)
        packed_owner = np.zeros(0, dtype=np.int64)
    packed_bucket = packed_count = np.zeros(0, dtype=np.int64)
    if packed_n and pairs:
        npairs = packed_heads["pairs"].astype(np.int64)
        delta = np.frombuffer(b"".join(deltas), dtype=np.uint8).astype(np.int64)
        cum = np.cumsum(delta)  # buckets restart at every summary's first pair
        starts = np.concatenate([[0], np.cumsum(npairs)])[:-1]
        has = npairs > 0
        packed_bucket = cum - np.repeat(cum[starts[has]] - delta[starts[has]], npairs[has])
        packed_count = (np.frombuffer(b"".join(count_lo), dtype=np.uint8).astype(np.int64)
                        + 256 * np.frombuffer(b"".join(count_hi), dtype=np.uint8).astype(np.int64))
    record_pair = np.frombuffer(b"".join(record_pairs), dtype=PAIR_DTYPE)
    heads = np.frombuffer(packed_heads.tobytes() + b"".join(record_heads), dtype=HEADER_DTYPE)
    return (heads, np.concatenate([packed_owner, np.array(record_rows, dtype=np.int64)]),
            np.concatenate([packed_bucket, record_pair["bucket"].astype(np.int64)]),
            np.concatenate([packed_count, record_pair["count"].astype(np.int64)]))


def slot_counts(values: Sequence[bytes | None]) -> np.ndarray:
    """(len(values), SLOTS, 3) up / degraded / down counts of every summary, by value and slot: the headers
    only, the histograms and metrics are not read."""
    heads, owner, _, _ = _histogram_columns(values, range(len(values)), pairs=False)
    return _by_slot(heads, owner, len(values))


def _by_slot(heads: np.ndarray, owner: np.ndarray, n_rows: int) -> np.ndarray:
    by_slot = np.zeros((n_rows * SLOTS, STATUS_CODES), dtype=np.int64)
    cells = owner * SLOTS + heads["slot"]
    for j, name in enumerate(("up", "degraded", "down")):
        by_slot[:, j] = np.bincount(cells, weights=heads[name], minlength=n_rows * SLOTS)
    return by_slot.reshape(n_rows, SLOTS, STATUS_CODES)


def month_of_day(day: int) -> tuple[int, int]:
    """(month index = year * 12 + month - 1, slot = day of the month - 1) of a day number (unix days)."""
    d = datetime.fromtimestamp(day * DAY, UTC)
    return d.year * 12 + d.month - 1, d.day - 1


def month_start_day(month: int) -> int:
    """The unix day number of a month index's first day."""
    return int(datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp()) // DAY


def month_end_day(month: int) -> int:
    """The unix day number of the first day after a month index."""
    return month_start_day(month + 1)
