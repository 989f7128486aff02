"""The result store port and its Redis adapter (the collector's write side).

One `write()` is one pipelined round trip for a whole batch: the latest result of every target
(one HSET), the packed history chunks and tracked metric series (every APPEND, and the EXPIRE once
per chunk, in one EVAL of `APPEND_SCRIPT`: a handful of commands per batch instead of ~6 per result)
and the state-change event streams. On a Redis Cluster the batch is split per slot, one MULTI/EXEC
per part with one command per append (`hulk_ops/collectors/slot_batches.py`).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisClusterException, RedisError

from hulk_ops.collectors.codec import HOUR, Keys, encode_point, encode_sample, hour_of
from hulk_ops.collectors.redis_client import (
    NotReplicated,
    Replicas,
    async_client,
    packed_commands,
    replicated,
)
from hulk_ops.collectors.slot_batches import ClusterBatches, SlotBatch
from hulk_ops.core.config import SentinelSettings
from hulk_ops.core.model import JSON, ProbeResult, StateChange

TARGET_EVENTS_MAX = 500
# What a store adapter raises when the store is unreachable or refuses a write.
STORE_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, RedisError, RedisClusterException)
MAX_TRACKED_PER_TARGET = 64


# (writer id, sequence number) of one batch: recorded with the batch, so a retry can tell it landed
BatchId = tuple[str, int]
BATCH_MARK_TTL_S = 86_400


# APPEND each record (ARGV[i + 1]) to KEYS[i]; a record's first byte says whether to set the key's TTL too
APPEND_SCRIPT = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  local record = ARGV[i + 1]
  redis.call('APPEND', key, string.sub(record, 2))
  if string.byte(record, 1) == 1 then
    redis.call('EXPIRE', key, ttl)
  end
end
return #KEYS
"""


class _Appends:
    """What `_append_tracked` queues, collected for `APPEND_SCRIPT` (its SADDs go to the pipeline)."""

    __slots__ = ("expired", "keys", "pipe", "records")

    def __init__(self, keys: list[str], records: list[bytes], expired: set[str], pipe: Any) -> None:
        self.keys, self.records, self.expired, self.pipe = keys, records, expired, pipe

    def append(self, key: str, record: bytes) -> None:
        self.keys.append(key)
        if key in self.expired:
            self.records.append(b"\0" + record)
        else:
            self.records.append(b"\1" + record)
            self.expired.add(key)

    def sadd(self, key: str, *members: str) -> None:
        self.pipe.sadd(key, *members)


class ResultStore(Protocol):
    async def write(self, results: Sequence[ProbeResult], changes: Sequence[StateChange],
                    batch: BatchId | None = None) -> None: ...

    async def batch_landed(self, writer: str, seq: int) -> bool: ...

    async def write_series(self, points: Sequence[tuple[str, float, float]]) -> None: ...

    async def previous_statuses(self) -> dict[str, str]: ...

    async def write_heartbeat(self, replica: str, info: dict[str, JSON]) -> None: ...

    async def write_breakers(self, states: dict[str, dict[str, JSON]]) -> None: ...

    async def close(self) -> None: ...


def tracked_matcher(globs: Sequence[str]) -> Callable[[str], bool]:
    if not globs:
        return lambda _name: False
    pattern = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
    seen: dict[str, bool] = {}  # metric names repeat every cycle: match each once

    def tracked(name: str) -> bool:
        hit = seen.get(name)
        if hit is None:
            hit = pattern.match(name) is not None
            if len(seen) < 65_536:
                seen[name] = hit
        return hit

    return tracked


class RedisResultStore:
    def __init__(
        self,
        redis_url: str,
        keys: Keys,
        retention_h: float = 24.0,
        events_max: int = 100_000,
        tracked: Callable[[str], Callable[[str], bool]] | None = None,
        timeout_s: float = 5.0,
        sentinel: SentinelSettings | None = None,
        cluster: bool = False,
    ) -> None:
        self.keys = keys
        self.ttl = int(retention_h * 3600) + HOUR  # a chunk lives until its last sample is retention old
        self.events_max = events_max
        self._tracked = tracked or (lambda _kind: lambda _name: False)
        self._matchers: dict[str, Callable[[str], bool]] = {}
        self._expired: set[str] = set()
        self._expired_hour = -1
        self._indexed: set[tuple[str, str]] = set()
        self.sentinel = sentinel
        self._replicas = Replicas()
        # no retries of its own: outages are handled by the buffering writer
        self.redis: Any = async_client(redis_url, sentinel, timeout_s=timeout_s, client_name="hulk-ops-collector",
                                       cluster=cluster)
        self.slot_batches: ClusterBatches | None = None
        if cluster:
            # async_client returns a cluster client exactly when cluster is set
            self.slot_batches = ClusterBatches(self.redis, keys, BATCH_MARK_TTL_S, timeout_s)  # type: ignore[arg-type]
        else:
            packed_commands(self.redis)  # type: ignore[arg-type]

    async def write(self, results: Sequence[ProbeResult], changes: Sequence[StateChange],
                    batch: BatchId | None = None) -> None:
        if not results and not changes:
            return
        now_hour = hour_of(time.time())
        if now_hour != self._expired_hour:
            self._expired.clear()
            self._expired_hour = now_hour
        if self.slot_batches is not None:
            await self._write_slots(self.slot_batches, results, changes, batch)
            return
        # MULTI/EXEC: a batch lands whole or not at all, so a retried batch never duplicates samples.
        pipe = self.redis.pipeline(transaction=True)
        if results:
            # orjson serialises the (slotted) dataclass itself: same JSON as to_dict(), without its deep copy
            pipe.hset(self.keys.latest, mapping={r.target: orjson.dumps(r) for r in results})
            self._queue_appends(pipe, results)
        self._queue_events(pipe, changes)
        pipe.set(self.keys.last_write, repr(time.time()))
        if batch is not None:  # in the same transaction: it landed if and only if this mark did
            pipe.set(self.keys.batch_mark(batch[0]), batch[1], ex=BATCH_MARK_TTL_S)
        try:
            await pipe.execute()
        except BaseException:
            self._expired.clear()  # the EXPIREs and SADDs queued above may not have run
            self._indexed.clear()
            raise
        if batch is not None and self.sentinel is not None and not await replicated(
                self.redis, self.sentinel, self.keys.batch_mark(batch[0]), batch[1], self._replicas):
            # the master answered EXEC, then another master answered: the batch went with the old one
            raise NotReplicated(f"batch {batch[1]} is not on the current master (a failover)")

    def _queue(self, pipe: Any, results: Sequence[ProbeResult], changes: Sequence[StateChange]) -> None:
        """The history, metric and event commands of a batch, one command each (`pipe`: a `SlotBatch`)."""
        begin = pipe.begin if isinstance(pipe, SlotBatch) else None
        for result in results:
            if begin is not None:
                begin(result)
            ts = result.observed_ts
            hour = hour_of(ts)
            sample = encode_sample(ts, result.status, result.latency_ms)
            self._append(pipe, self.keys.history(result.target, hour), sample)
            self._append_tracked(pipe, result, ts, hour)
        self._queue_events(pipe, changes, begin)

    def _queue_events(self, pipe: Any, changes: Sequence[StateChange], begin: Callable[[Any], None] | None = None
                      ) -> None:
        for change in changes:
            if begin is not None:
                begin(change)
            fields = change.fields()
            pipe.xadd(self.keys.events, fields, maxlen=self.events_max, approximate=True)
            pipe.xadd(self.keys.target_events(change.target), fields, maxlen=TARGET_EVENTS_MAX, approximate=True)

    def _queue_appends(self, pipe: Any, results: Sequence[ProbeResult]) -> None:
        """Every history sample and tracked-metric point of a batch as one EVAL of `APPEND_SCRIPT` (single
        Redis: the client's cost is per command, and a batch of 500 Redis results was ~3,000 of them).
        Same keys and bytes as one APPEND (+ EXPIRE) each; inside the batch's MULTI/EXEC."""
        keys: list[str] = []
        records: list[bytes] = []
        history, expired = self.keys.history, self._expired
        for result in results:
            ts = result.observed_ts
            hour = hour_of(ts)
            key = history(result.target, hour)
            sample = encode_sample(ts, result.status, result.latency_ms)
            if key in expired:
                records.append(b"\0" + sample)
            else:
                records.append(b"\1" + sample)
                expired.add(key)
            keys.append(key)
            if result.metrics:
                self._append_tracked(_Appends(keys, records, expired, pipe), result, ts, hour)
        pipe.execute_command("EVAL", APPEND_SCRIPT, len(keys), *keys, self.ttl, *records)

    async def _write_slots(self, slots: ClusterBatches, results: Sequence[ProbeResult],
                           changes: Sequence[StateChange], batch: BatchId | None) -> None:
        parts = slots.batch()
        for result in results:
            parts.begin(result)
            parts.hset(self.keys.latest, {result.target: orjson.dumps(result)})
        self._queue(parts, results, changes)
        parts.begin(None)
        parts.set(self.keys.last_write, repr(time.time()))
        try:
            await slots.write(parts, *(batch if batch is not None else (None, 0)))
        except BaseException:
            self._expired.clear()
            self._indexed.clear()
            raise

    def _append(self, pipe: Any, key: str, record: bytes) -> None:
        if isinstance(pipe, _Appends):
            pipe.append(key, record)
            return
        pipe.append(key, record)
        if key not in self._expired:
            pipe.expire(key, self.ttl)
            self._expired.add(key)

    def _append_tracked(self, pipe: Any, result: ProbeResult, ts: float, hour: int) -> None:
        matcher = self._matchers.get(result.kind)
        if matcher is None:
            matcher = self._matchers[result.kind] = self._tracked(result.kind)
        count = 0
        for name, value in result.metrics.items():
            if not matcher(name):
                continue
            count += 1
            if count > MAX_TRACKED_PER_TARGET:
                break
            self._append(pipe, self.keys.metric(result.target, name, hour), encode_point(ts, value))
            if (result.target, name) not in self._indexed:
                pipe.sadd(self.keys.metric_index(result.target), name)
                self._indexed.add((result.target, name))

    async def batch_landed(self, writer: str, seq: int) -> bool:
        """Whether batch `seq` of `writer` (or a later one) is stored: sequence numbers only grow."""
        if self.slot_batches is not None:  # stored means every part of it
            return await self.slot_batches.landed(writer, seq)
        if self.sentinel is not None:  # stored means on the master and its replicas
            return await replicated(self.redis, self.sentinel, self.keys.batch_mark(writer), seq, self._replicas)
        mark = await self.redis.get(self.keys.batch_mark(writer))
        return mark is not None and int(mark) >= seq

    async def write_series(self, points: Sequence[tuple[str, float, float]]) -> None:
        """Named series (e.g. Prometheus query results): (series name, ts, value)."""
        if not points:
            return
        pipe = self.redis.pipeline(transaction=False)
        for name, ts, value in points:
            self._append(pipe, self.keys.series(name, hour_of(ts)), encode_point(ts, value))
        pipe.sadd(self.keys.series_index(), *{name for name, _, _ in points})
        await pipe.execute()

    async def previous_statuses(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.latest)
        out = {}
        for target, blob in raw.items():
            try:
                out[target.decode()] = orjson.loads(blob)["status"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return out

    async def write_heartbeat(self, replica: str, info: dict[str, JSON]) -> None:
        await self.redis.hset(self.keys.collectors, replica, orjson.dumps(info))

    async def write_breakers(self, states: dict[str, dict[str, JSON]]) -> None:
        if states:
            await self.redis.hset(self.keys.breakers, mapping={k: orjson.dumps(v) for k, v in states.items()})

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        if self.slot_batches is not None:
            await self.slot_batches.aclose()
        await self.redis.aclose()
