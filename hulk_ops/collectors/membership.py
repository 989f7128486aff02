"""Collector membership: the port and its Redis adapter (leases: SET PX + renewal), plus a fake.

Each live collector owns one key `{prefix}{shard}:member:{id}` holding its record (JSON) with a TTL;
it renews the TTL every `sync_s`. A set `{prefix}{shard}:members` indexes the ids. Every call is
one Lua script, so it is atomic and carries the server's clock: `activate_at` (join) and
`leaving_at` (graceful leave) are the server's time plus the handover delay, and every snapshot
says at what server time it was taken. Those two facts are what the handover argument in
docs/scaling.md rests on. Redis expires a lease that is not renewed; nothing here decides who
is alive but Redis. The script reads leases it cannot declare: on a Redis Cluster that works because every
key here carries the `{shard}` hash tag (one slot, one node).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict

import orjson
from redis.exceptions import TimeoutError as RedisTimeoutError

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.redis_client import CLIENT_ERRORS, sync_client
from hulk_ops.core.config import SentinelSettings

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

JOIN = _NOW + """
local rec = cjson.decode(ARGV[1])
rec['joined_at'] = string.format('%.6f', now)
rec['activate_at'] = string.format('%.6f', now + tonumber(ARGV[3]))
redis.call('SET', KEYS[2], cjson.encode(rec), 'PX', ARGV[2])
redis.call('SADD', KEYS[1], rec['id'])
return {string.format('%.6f', now), rec['activate_at']}
"""

SYNC = _NOW + """
local renewed = 0
if ARGV[4] == '1' then
  local own = redis.call('GET', KEYS[2])
  if own then
    if cjson.decode(own)['token'] == ARGV[1] then
      redis.call('PEXPIRE', KEYS[2], ARGV[2])
      renewed = 1
    else
      renewed = -1
    end
  end
end
local records = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[3] .. id)
  if value then records[#records + 1] = value else redis.call('SREM', KEYS[1], id) end
end
return {string.format('%.6f', now), renewed, records}
"""

LEAVE = _NOW + """
local own = redis.call('GET', KEYS[1])
if not own then return {string.format('%.6f', now), ''} end
local rec = cjson.decode(own)
if rec['token'] ~= ARGV[1] then return {string.format('%.6f', now), ''} end
if not rec['leaving_at'] then
  rec['leaving_at'] = string.format('%.6f', now + tonumber(ARGV[2]))
  redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
end
return {string.format('%.6f', now), rec['leaving_at']}
"""


class MembershipError(Exception):
    """A membership call failed: the lease state is unknown.

    `down` is True when the engine refused or dropped the connection (it is down for everyone),
    False when the call merely timed out (it may be us that is slow: others may still renew).
    """

    def __init__(self, message: str, down: bool = True) -> None:
        super().__init__(message)
        self.down = down


class MemberRecord(TypedDict):
    """One replica's lease as the membership engine keeps it (JSON); the times are its clock, "%.6f" seconds."""

    id: str
    token: str  # this incarnation of the replica
    host: str
    pid: int
    joined_at: NotRequired[str]  # set by the engine on join, as are the other two
    activate_at: NotRequired[str]
    leaving_at: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    server_time: float
    renewed: int  # 1 renewed, 0 our lease is gone, -1 our id now belongs to another process
    records: list[MemberRecord]


class Membership(Protocol):
    def join(self, record: MemberRecord, ttl_s: float, handover_s: float) -> tuple[float, float]:
        """Register (or replace) this replica's lease; returns (server time, activate_at)."""
        ...

    def sync(self, replica: str, token: str, ttl_s: float, renew: bool = True) -> Snapshot: ...

    def leave(self, replica: str, token: str, handover_s: float) -> float | None:
        """Announce a graceful leave; returns leaving_at (None: the lease was already gone)."""
        ...

    def close(self) -> None: ...


class RedisMembership:
    def __init__(self, url: str, prefix: str, timeout_s: float = 1.0,
                 sentinel: SentinelSettings | None = None, cluster: bool = False) -> None:
        keys = Keys(prefix)
        self.index = keys.shard_members
        self.member_prefix = keys.shard_member_prefix
        self.redis = sync_client(url, sentinel, timeout_s=timeout_s, client_name="hulk-ops-membership",
                                 cluster=cluster)
        self._join = self.redis.register_script(JOIN)
        self._sync = self.redis.register_script(SYNC)
        self._leave = self.redis.register_script(LEAVE)

    def key(self, replica: str) -> str:
        return self.member_prefix + replica

    def join(self, record: MemberRecord, ttl_s: float, handover_s: float) -> tuple[float, float]:
        now, activate = self._call(self._join, [self.index, self.key(record["id"])],
                                   [orjson.dumps(record), int(ttl_s * 1000), repr(handover_s)])
        return float(now), float(activate)

    def sync(self, replica: str, token: str, ttl_s: float, renew: bool = True) -> Snapshot:
        now, renewed, raw = self._call(self._sync, [self.index, self.key(replica)],
                                       [token, int(ttl_s * 1000), self.member_prefix, "1" if renew else "0"])
        return Snapshot(float(now), int(renewed), [orjson.loads(r) for r in raw])

    def leave(self, replica: str, token: str, handover_s: float) -> float | None:
        _now, leaving = self._call(self._leave, [self.key(replica)], [token, repr(handover_s)])
        return float(leaving) if leaving else None

    def close(self) -> None:
        self.redis.close()

    @staticmethod
    def _call(script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except (RedisTimeoutError, TimeoutError) as exc:
            raise MembershipError(f"membership engine did not answer in time: {exc}", down=False) from exc
        except CLIENT_ERRORS as exc:
            raise MembershipError(f"membership engine unreachable: {exc}") from exc


@dataclass
class MemoryMembership:
    """The same semantics in memory with an injectable clock: the fake for unit tests."""

    clock: Callable[[], float] = time.time
    leases: dict[str, tuple[MemberRecord, float]] = field(default_factory=dict)
    failing: bool = False

    def _now(self) -> float:
        if self.failing:
            raise MembershipError("membership engine unreachable: failing on purpose")
        now = self.clock()
        self.leases = {k: v for k, v in self.leases.items() if v[1] > now}
        return now

    def join(self, record: MemberRecord, ttl_s: float, handover_s: float) -> tuple[float, float]:
        now = self._now()
        rec: MemberRecord = {**record, "joined_at": f"{now:.6f}", "activate_at": f"{now + handover_s:.6f}"}
        self.leases[rec["id"]] = (rec, now + ttl_s)
        return now, now + handover_s

    def sync(self, replica: str, token: str, ttl_s: float, renew: bool = True) -> Snapshot:
        now = self._now()
        renewed = 0
        if renew and replica in self.leases:
            rec, _expires = self.leases[replica]
            renewed = 1 if rec["token"] == token else -1
            if renewed == 1:
                self.leases[replica] = (rec, now + ttl_s)
        return Snapshot(now, renewed, [rec.copy() for rec, _ in self.leases.values()])

    def leave(self, replica: str, token: str, handover_s: float) -> float | None:
        now = self._now()
        if replica not in self.leases or self.leases[replica][0]["token"] != token:
            return None
        rec, _expires = self.leases[replica]
        rec.setdefault("leaving_at", f"{now + handover_s:.6f}")
        return float(rec["leaving_at"])

    def close(self) -> None:
        return None
