"""Clients of the store: one Redis named by `store.redis_url`, or the master Redis Sentinel names.

Every part of hulk-ops that reads or writes the store (collector, notifier, sharding leases, dashboard, API,
actions' timeline) builds its client here, so all of them follow a Sentinel failover: redis-py's sentinel
pool asks the sentinels for the master on every new connection and drops a connection that finds a replica.

`replicated()` is what makes a write *acknowledged* under Sentinel: the master and the configured number of
replicas have it (Redis `WAIT`). Replication is asynchronous, so a batch the master took but no replica got
yet would vanish with a killed master; the writer keeps such a batch until it is replicated, and its batch
mark tells whether the (possibly new) master has it.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from hulk_ops.core.config import SentinelSettings, redact_url


class NotReplicated(redis.ConnectionError):
    """The master took a batch but too few replicas have it yet (it is kept and checked again)."""


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _options(sentinel: SentinelSettings | None, timeout_s: float, client_name: str,
             retries: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(client options, sentinel options) shared by the asyncio and the blocking client."""
    common: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                              "retry": Retry(NoBackoff(), retries), "client_name": client_name}
    if sentinel is None:
        return common, {}
    return ({**common, "db": sentinel.db, "password": _secret(sentinel.password)},
            {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
             "sentinel_kwargs": {"password": _secret(sentinel.sentinel_password), "socket_timeout": timeout_s,
                                 "socket_connect_timeout": timeout_s}})


def async_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                 retries: int = 0) -> aioredis.Redis:
    """An asyncio client of the store (no retries of its own by default: callers buffer or report)."""
    client, sentinels = _options(sentinel, timeout_s, client_name, retries)
    if sentinel is None:
        return aioredis.Redis.from_url(url, **client)
    return AsyncSentinel(sentinel.endpoints(), **sentinels).master_for(sentinel.master, **client)


def sync_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                retries: int = 0) -> redis.Redis:
    client, sentinels = _options(sentinel, timeout_s, client_name, retries)
    if sentinel is None:
        return redis.Redis.from_url(url, **client)
    return Sentinel(sentinel.endpoints(), **sentinels).master_for(sentinel.master, **client)


def where(url: str, sentinel: SentinelSettings | None) -> str:
    """The store as error messages name it (credentials never shown)."""
    if sentinel is None:
        return redact_url(url)
    return f"Redis Sentinel master {sentinel.master!r} ({', '.join(sentinel.addresses)})"


class Replicas:
    """How many replicas the master has, re-read every `REFRESH_S` (INFO): `WAIT` for more replicas than are
    connected would block for its whole timeout on every batch (a promoted master whose old peer is gone)."""

    REFRESH_S = 5.0

    def __init__(self) -> None:
        self.connected: int | None = None
        self.read_at = 0.0

    async def count(self, conn: aioredis.Redis, fresh: bool = False) -> int:
        now = time.monotonic()
        if fresh or self.connected is None or now - self.read_at > self.REFRESH_S:
            self.connected = int((await conn.info("replication")).get("connected_slaves", 0))
            self.read_at = now
        return self.connected


async def replicated(client: aioredis.Redis, sentinel: SentinelSettings, mark_key: str, seq: int,
                     replicas: Replicas) -> bool:
    """Whether the master the client reaches has batch `seq` (its mark) and enough replicas have it too.

    One connection does it all: a write of its own (so `WAIT` counts from a stream offset past the batch),
    the mark read (the batch is on *this* master, not a predecessor), then `WAIT` for `min_replicas`, or for as
    many as are connected when fewer are (a lone master: all there is has it). Raises `NotReplicated` when the
    master has the batch but too few replicas confirmed it within `ack_timeout_ms`."""
    conn = client.client()  # a single connection for the commands below
    try:
        await conn.set(f"{mark_key}:ack", seq, ex=86_400)
        mark = await conn.get(mark_key)
        if mark is None or int(mark) < seq:
            return False
        need = min(sentinel.min_replicas, await replicas.count(conn))
        if need == 0:
            return True
        acked = int(await conn.execute_command("WAIT", need, sentinel.ack_timeout_ms))
        if acked >= need:
            return True
        need = min(sentinel.min_replicas, await replicas.count(conn, fresh=True))
        if acked >= need:  # a replica went away meanwhile
            return True
        raise NotReplicated(f"batch {seq}: {acked} of {need} replicas confirmed it within {sentinel.ack_timeout_ms} ms")
    finally:
        await conn.aclose()
