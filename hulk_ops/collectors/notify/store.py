"""Redis side of notifications: incident state, the outbox, the delivery log, silences, the leader lock.

    P {notify}:incidents   hash   root -> tracked incident (JSON): survives restarts, so an open is
                                  never re-sent and a resolve is never lost
    P {notify}:q:<webhook> list   the outbox of one webhook, oldest first; the head is retried with
                                  backoff (its attempts and next try are kept in it), at most
                                  `outbox_max` entries (the oldest is dropped and logged)
    P notify:log           stream delivery log: delivered | retry | gave_up | dropped (ReadModel.deliveries)
    P notify:seq           string message sequence
    P notify:leader        string replica holding the notifier (one per installation), with a TTL
    P silences             hash   id -> silence (JSON) added from the dashboard

State and the messages an evaluation produced are written in one MULTI/EXEC: both or neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.exceptions import ResponseError

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.collectors.notify.tracker import Tracked
from hulk_ops.collectors.redis_client import async_client
from hulk_ops.core.config import SentinelSettings
from hulk_ops.core.silences import Silence

_REPLACE_HEAD = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  if ARGV[2] == '' then redis.call('LPOP', KEYS[1]) else redis.call('LSET', KEYS[1], 0, ARGV[2]) end
  return 1
end
return 0
"""
_LEADER = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


class NotifyStore:
    def __init__(self, redis_url: str, prefix: str, outbox_max: int = 10_000, log_max: int = 1_000,
                 timeout_s: float = 5.0, sentinel: SentinelSettings | None = None, cluster: bool = False) -> None:
        self.keys = NotifyKeys(prefix)
        self.store_keys = Keys(prefix)
        self.outbox_max = outbox_max
        self.log_max = log_max
        self.cluster = cluster
        # replies are bytes (no decode_responses), which redis-py's annotations (bytes | str) cannot say
        self.redis: Any = async_client(redis_url, sentinel, timeout_s=timeout_s, client_name="hulk-ops-notifier",
                                  cluster=cluster)
        self._replace_head = self.redis.register_script(_REPLACE_HEAD)
        self._leader = self.redis.register_script(_LEADER)

    async def acquire_leader(self, me: str, ttl_s: float) -> bool:
        return bool(await self._leader(keys=[self.keys.leader], args=[me, int(ttl_s * 1000)]))

    async def release_leader(self, me: str) -> None:
        if (await self.redis.get(self.keys.leader)) == me.encode():
            await self.redis.delete(self.keys.leader)

    async def latest(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.store_keys.latest)
        out = {}
        for name, blob in raw.items():
            try:
                out[name.decode()] = orjson.loads(blob)
            except orjson.JSONDecodeError:
                continue
        return out

    async def silences(self) -> list[Silence]:
        raw = await self.redis.hgetall(self.keys.silences)
        out = []
        for blob in raw.values():
            try:
                out.append(Silence.from_dict(orjson.loads(blob)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return out

    async def load_state(self, webhooks: Iterable[str] = ()) -> dict[str, Tracked]:
        if not self.cluster:
            await self._adopt_untagged([self.keys.incidents, *(self.keys.queue(w) for w in webhooks)])
        raw = await self.redis.hgetall(self.keys.incidents)
        return {k.decode(): Tracked.from_dict(orjson.loads(v)) for k, v in raw.items()}

    async def _adopt_untagged(self, keys: list[str]) -> None:
        """Incident state and outboxes kept under the names without hash tags (an earlier layout) are renamed
        once, so an upgrade neither re-sends an open nor drops a queued message. One Redis or Sentinel only: a
        cluster store never had them (and a rename across slots is refused there)."""
        for key in keys:
            old = self.keys.untagged(key)
            if await self.redis.exists(old):
                with contextlib.suppress(ResponseError):  # another collector renamed it meanwhile
                    await self.redis.renamenx(old, key)

    async def next_ids(self, count: int) -> list[int]:
        if count <= 0:
            return []
        last = int(await self.redis.incrby(self.keys.seq, count))
        return list(range(last - count + 1, last + 1))

    async def load_burn(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.get(self.keys.burn)
        return orjson.loads(raw) if raw else {}

    async def commit(self, state: dict[str, Tracked], removed: Iterable[str],
                     messages: Sequence[dict[str, Any]], burn: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Persist the incident state (and the open burn alerts) and queue the messages at once; returns the
        messages dropped by the bound."""
        pipe = self.redis.pipeline(transaction=True)
        if burn is not None:
            pipe.set(self.keys.burn, orjson.dumps(burn))
        if state:
            pipe.hset(self.keys.incidents, mapping={k: orjson.dumps(v.to_dict()) for k, v in state.items()})
        gone = list(removed)
        if gone:
            pipe.hdel(self.keys.incidents, *gone)
        for message in messages:
            pipe.rpush(self.keys.queue(message["webhook"]), orjson.dumps(message))
        await pipe.execute()
        dropped: list[dict[str, Any]] = []
        for webhook in {m["webhook"] for m in messages}:
            dropped += await self._trim(webhook)
        return dropped

    async def _trim(self, webhook: str) -> list[dict[str, Any]]:
        key = self.keys.queue(webhook)
        excess = int(await self.redis.llen(key)) - self.outbox_max
        if excess <= 0:
            return []
        raw = await self.redis.lpop(key, excess)
        return [orjson.loads(r) for r in raw or []]

    async def head(self, webhook: str) -> tuple[bytes, dict[str, Any]] | None:
        raw = await self.redis.lindex(self.keys.queue(webhook), 0)
        if raw is None:
            return None
        return raw, orjson.loads(raw)

    async def pop_head(self, webhook: str, raw: bytes) -> bool:
        """Remove the head if it is still this message (it may have been dropped by the bound meanwhile)."""
        return bool(await self._replace_head(keys=[self.keys.queue(webhook)], args=[raw, b""]))

    async def update_head(self, webhook: str, raw: bytes, message: dict[str, Any]) -> bool:
        return bool(await self._replace_head(keys=[self.keys.queue(webhook)], args=[raw, orjson.dumps(message)]))

    async def queue_length(self, webhook: str) -> int:
        return int(await self.redis.llen(self.keys.queue(webhook)))

    async def log(self, entry: dict[str, Any]) -> None:
        fields = {k: ("" if v is None else str(v)) for k, v in entry.items()}
        await self.redis.xadd(self.keys.log, fields, maxlen=self.log_max, approximate=True)

    async def close(self) -> None:
        await self.redis.aclose()
