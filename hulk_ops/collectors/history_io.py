"""History export and import (`hulk-ops history export|import`), for migrations, backups and restores.

The line format is what `hulk-ops probe --json` prints: one JSON object per probe sample with target, kind,
status, latency_ms, version, metrics, error and observed_at (ISO-8601 UTC). The store keeps per sample its
time (to the tenth of a second), status and latency, and the tracked metrics' points: an export carries
those, with version and error null.

Import validates the whole file first (a target not in the config, a kind that is not the target's, a
malformed line: refused with the line number, nothing written), then merges it into the raw chunks in
batches of `BATCH_LINES` (bounded memory): a sample is one per target and tenth of a second, so importing a
file twice stores each sample once. The hours it touched are then summarised into the long-range tier,
older ones included: raw chunks past `store.retention_h` and hour summaries past the hourly retention are
kept just long enough for that (`STAGING_S`), then expire as they would have.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import redis

from hulk_ops.collectors import rollups
from hulk_ops.collectors.codec import (
    HOUR,
    POINT,
    POINT_DTYPE,
    SAMPLE,
    SAMPLE_DTYPE,
    Keys,
    decode_points,
    decode_samples,
    hour_of,
)
from hulk_ops.collectors.redis_client import sync_client
from hulk_ops.collectors.store import tracked_matcher
from hulk_ops.core.config import Config
from hulk_ops.core.model import CODE_STATUS, STATUS_CODE, iso, parse_iso

BATCH_LINES = 100_000
STAGING_S = 3_600
FIELDS = ("target", "kind", "status", "latency_ms", "version", "metrics", "error", "observed_at")


class ImportRefused(Exception):
    """The file cannot be imported (the message names the file and line); nothing was written."""


@dataclass
class ImportStats:
    lines: int = 0
    samples_new: int = 0  # within the raw retention, not stored before
    samples_known: int = 0  # within the raw retention, already stored
    samples_old: int = 0  # older than the raw retention: only summarised
    hours: set[tuple[str, int]] = field(default_factory=set)
    hours_summarised: int = 0
    days_summarised: int = 0


# -- export ----------------------------------------------------------------------------------------


def export(config: Config, out: IO[bytes], targets: Sequence[str] | None = None, since: float | None = None,
           until: float | None = None, now: float | None = None) -> int:
    """Write the raw history of `targets` (default: all) in [since, until] as JSON lines; returns the count."""
    now = time.time() if now is None else now
    until = now if until is None else until
    oldest = now - config.store.retention_h * HOUR
    since = oldest if since is None else max(since, oldest)
    keys = Keys(config.store.prefix)
    client = sync_client(config.store.url, config.store.sentinel, timeout_s=10.0, client_name="hulk-ops-history",
                         cluster=config.store.cluster)
    kinds = {t.name: t.kind for t in config.targets}
    count = 0
    try:
        for name in targets if targets is not None else list(kinds):
            hours = list(range(hour_of(since), hour_of(until) + 1))
            metrics = sorted(m.decode() for m in client.smembers(keys.metric_index(name)))
            pipe = client.pipeline(transaction=False)
            for h in hours:
                pipe.get(keys.history(name, h))
                for m in metrics:
                    pipe.get(keys.metric(name, m, h))
            replies = iter(pipe.execute())
            for h in hours:
                chunk = next(replies)
                points = {m: next(replies) for m in metrics}
                samples = decode_samples([(h, chunk)], since, until)
                by_ds: dict[int, dict[str, float]] = defaultdict(dict)
                for m, blob in points.items():
                    data = decode_points([(h, blob)], h * HOUR, (h + 1) * HOUR)
                    for ts, value in zip(data["ts"], data["value"], strict=True):
                        by_ds[_ds(ts, h)][m] = float(value)
                for ts, status, latency in zip(samples["ts"], samples["status"], samples["latency"], strict=True):
                    out.write(orjson.dumps({
                        "target": name, "kind": kinds[name], "status": CODE_STATUS[int(status)],
                        "latency_ms": None if math.isnan(latency) else round(float(latency), 4),
                        "version": None, "metrics": by_ds.get(_ds(ts, h), {}), "error": None,
                        "observed_at": iso_ts(float(ts)),
                    }) + b"\n")
                    count += 1
    finally:
        client.close()
    return count


def iso_ts(ts: float) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(ts, UTC))


def _ds(ts: float, hour: int) -> int:
    return round((ts - hour * HOUR) * 10)


# -- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    target: str
    ts: float
    status: int
    latency: float
    metrics: dict[str, float]


def parse_lines(path: Path, config: Config) -> Iterator[Line]:
    """Every line of the file, checked; ImportRefused names the first bad one."""
    kinds = {t.name: t.kind for t in config.targets}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            yield _check(raw, number, path, kinds)


def _check(raw: bytes, number: int, path: Path, kinds: dict[str, str]) -> Line:
    def refuse(why: str) -> ImportRefused:
        return ImportRefused(f"{path}:{number}: {why}")

    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise refuse(f"not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise refuse("not a JSON object")
    missing = [f for f in ("target", "status", "observed_at") if f not in item]
    if missing:
        raise refuse(f"missing {', '.join(missing)}")
    target = item["target"]
    if not isinstance(target, str) or target not in kinds:
        raise refuse(f"target {target!r} is not in the config")
    if item.get("kind") is not None and item["kind"] != kinds[target]:
        raise refuse(f"kind {item['kind']!r} is not {target}'s kind ({kinds[target]})")
    status = item["status"]
    if status not in STATUS_CODE:
        raise refuse(f"status {status!r} is not one of up, degraded, down")
    latency = item.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0):
        raise refuse(f"latency_ms {latency!r} is not a number >= 0 or null")
    try:
        ts = parse_iso(str(item["observed_at"])).timestamp()
    except (ValueError, TypeError):
        raise refuse(f"observed_at {item['observed_at']!r} is not an ISO-8601 time") from None
    metrics = item.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in metrics.items()):
        raise refuse("metrics is not an object of names to numbers")
    return Line(target, ts, STATUS_CODE[status], math.nan if latency is None else float(latency),
                {k: float(v) for k, v in metrics.items()})


def import_file(config: Config, path: Path, progress: Callable[[int], None] | None = None,
                now: float | None = None) -> ImportStats:
    """Validate `path` whole, then merge it into the store and summarise the hours it touched."""
    for _ in parse_lines(path, config):  # refuses before anything is written
        pass
    stats = ImportStats()
    now = time.time() if now is None else now
    kinds = {t.name: t.kind for t in config.targets}
    from hulk_ops.probes import registry

    matchers = {k: tracked_matcher(registry.tracked_metrics(k)) for k in set(kinds.values())}
    keys = Keys(config.store.prefix)
    client = sync_client(config.store.url, config.store.sentinel, timeout_s=10.0, client_name="hulk-ops-history",
                         cluster=config.store.cluster)
    try:
        samples: dict[tuple[str, int], dict[int, bytes]] = defaultdict(dict)
        points: dict[tuple[str, str, int], dict[int, bytes]] = defaultdict(dict)
        pending = 0
        for line in parse_lines(path, config):
            hour = hour_of(line.ts)
            ds = min(35_999, int((line.ts - hour * HOUR) * 10 + 1e-6))
            samples[(line.target, hour)][ds] = SAMPLE.pack(ds, line.status, line.latency)
            tracked = matchers[kinds[line.target]]
            for name, value in line.metrics.items():
                if tracked(name):
                    points[(line.target, name, hour)][ds] = POINT.pack(ds, value)
            stats.lines += 1
            pending += 1
            if pending >= BATCH_LINES:
                _flush(client, keys, config, samples, points, stats, now)
                samples.clear()
                points.clear()
                pending = 0
                if progress:
                    progress(stats.lines)
        _flush(client, keys, config, samples, points, stats, now)
        if progress:
            progress(stats.lines)
    finally:
        client.close()
    _summarise(config, stats, now)
    return stats


def _flush(client: redis.Redis, keys: Keys, config: Config, samples: dict, points: dict, stats: ImportStats,
           now: float) -> None:
    """Merge the batch into the raw chunks, one optimistic transaction per chunk (a live collector may append)."""
    retention_s = config.store.retention_h * HOUR
    for (target, hour), new in samples.items():
        added = _merge(client, keys.history(target, hour), new, SAMPLE_DTYPE, hour, retention_s, now)
        if (hour + 1) * HOUR + retention_s + HOUR < now:
            stats.samples_old += len(new)
        else:
            stats.samples_new += added
            stats.samples_known += len(new) - added
        stats.hours.add((target, hour))
    pipe = client.pipeline(transaction=False)
    for (target, name, hour), new in points.items():
        _merge(client, keys.metric(target, name, hour), new, POINT_DTYPE, hour, retention_s, now)
        pipe.sadd(keys.metric_index(target), name)
    pipe.execute()


# Merge fixed-size records (u16 tenth-of-a-second first) into a chunk, keeping one per tenth of a second, in
# time order (KEYS[1]; ARGV: record size, the new records, expire-at). Atomic, so a collector appending to the
# same chunk meanwhile loses nothing, and one key per call, so it runs on a Redis Cluster too. Returns how many
# records were new.
MERGE_LUA = """
local size = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1]) or ''
local recs, order = {}, {}
for i = 1, #cur - size + 1, size do
  local ds = struct.unpack('<H', cur, i)
  if not recs[ds] then recs[ds] = string.sub(cur, i, i + size - 1); order[#order + 1] = ds end
end
local added = 0
local new = ARGV[2]
for i = 1, #new - size + 1, size do
  local ds = struct.unpack('<H', new, i)
  if not recs[ds] then recs[ds] = string.sub(new, i, i + size - 1); order[#order + 1] = ds; added = added + 1 end
end
if added == 0 then return 0 end
table.sort(order)
local out = {}
for i, ds in ipairs(order) do out[i] = recs[ds] end
redis.call('SET', KEYS[1], table.concat(out), 'KEEPTTL')
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
else
  redis.call('EXPIREAT', KEYS[1], ARGV[3], 'GT')
end
return added
"""


def _merge(client: redis.Redis, key: str, new: dict[int, bytes], dtype: np.dtype, hour: int, retention_s: float,
           now: float) -> int:
    """Add the records of `new` whose tenth of a second the chunk does not hold yet; returns how many."""
    expire_at = int(max((hour + 1) * HOUR + retention_s + HOUR, now + STAGING_S))
    script = client.register_script(MERGE_LUA)
    return int(script(keys=[key], args=[dtype.itemsize, b"".join(new[ds] for ds in sorted(new)), expire_at]))


def _summarise(config: Config, stats: ImportStats, now: float) -> None:
    """Summarise every closed hour the import touched, then its closed days; what is past its retention is
    expired again afterwards."""
    from hulk_ops.collectors.redis_client import async_client
    from hulk_ops.collectors.rollup_job import RollupJob

    closed = now - 60
    by_target: dict[str, list[int]] = defaultdict(list)
    for target, hour in stats.hours:
        if (hour + 1) * HOUR <= closed:
            by_target[target].append(hour)
    if not by_target:
        return
    keys = Keys(config.store.prefix)

    async def run() -> None:
        client = async_client(config.store.url, config.store.sentinel, timeout_s=10.0,
                              client_name="hulk-ops-history", cluster=config.store.cluster)
        try:
            job = RollupJob(client, keys, config.store.rollups, config.store.retention_h, lambda: [],
                            min_expire_at=int(now + STAGING_S))
            for target, hours in sorted(by_target.items()):
                await job._hours([target], sorted(hours))
                days = sorted({h // 24 for h in hours if (h // 24 + 1) * rollups.DAY <= closed})
                await job._days([target], days)
            stats.hours_summarised = job.stats.hours_written
            stats.days_summarised = job.stats.days_written
            await _expire_past_retention(client, keys, config, by_target, now)
        finally:
            await client.aclose()

    asyncio.run(run())


async def _expire_past_retention(client: Any, keys: Keys, config: Config, by_target: dict[str, list[int]],
                                 now: float) -> None:
    retention_s = config.store.retention_h * HOUR
    hourly_s = config.store.rollups.hourly_days * rollups.DAY
    pipe = client.pipeline(transaction=False)
    for target, hours in by_target.items():
        names = [m.decode() for m in await client.smembers(keys.metric_index(target))]
        for hour in hours:
            if (hour + 1) * HOUR + retention_s + HOUR < now:
                pipe.delete(keys.history(target, hour), *(keys.metric(target, n, hour) for n in names))
        for day in {h // 24 for h in hours}:
            if (day + 1) * rollups.DAY + hourly_s < now:
                pipe.delete(keys.rollup_hourly(target, day))
    await pipe.execute()


def progress_printer(total_hint: int | None = None) -> Callable[[int], None] | None:
    """A progress line on stderr when it is a terminal (None otherwise)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        sys.stderr.write(f"\rimported {done:,} lines" + (f" of {total_hint:,}" if total_hint else ""))
        sys.stderr.flush()

    return show
