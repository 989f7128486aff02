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


def async_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                 retries: int = 0) -> aioredis.Redis:
    """An asyncio client of the store (no retries of its own by default: callers buffer or report)."""
    common: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                              "retry": Retry(NoBackoff(), retries), "client_name": client_name}
    if sentinel is None:
        return aioredis.Redis.from_url(url, **common)
    sentinels = AsyncSentinel(sentinel.endpoints(), socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                              sentinel_kwargs={"password": _secret(sentinel.sentinel_password),
                                               "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s})
    return sentinels.master_for(sentinel.master, db=sentinel.db, password=_secret(sentinel.password), **common)


def sync_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                retries: int = 0) -> redis.Redis:
    common: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                              "retry": Retry(NoBackoff(), retries), "client_name": client_name}
    if sentinel is None:
        return redis.Redis.from_url(url, **common)
    sentinels = Sentinel(sentinel.endpoints(), socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                         sentinel_kwargs={"password": _secret(sentinel.sentinel_password),
                                          "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s})
    return sentinels.master_for(sentinel.master, db=sentinel.db, password=_secret(sentinel.password), **common)


def where(url: str, sentinel: SentinelSettings | None) -> str:
    """The store as error messages name it (credentials never shown)."""
    if sentinel is None:
        return redact_url(url)
    return f"Redis Sentinel master {sentinel.master!r} ({', '.join(sentinel.addresses)})"


async def replicated(client: aioredis.Redis, sentinel: SentinelSettings, mark_key: str, seq: int) -> bool:
    """Whether the master the client reaches has batch `seq` (its mark) and enough replicas have it too.

    One connection does it all: a write of its own (so `WAIT` counts from a stream offset past the batch),
    the mark read (the batch is on *this* master, not a predecessor), then `WAIT`. Raises `NotReplicated`
    when the master has the batch but too few replicas confirmed it within `ack_timeout_ms`."""
    conn = client.client()  # a single connection for the three commands
    try:
        await conn.set(f"{mark_key}:ack", seq, ex=86_400)
        mark = await conn.get(mark_key)
        if mark is None or int(mark) < seq:
            return False
        if sentinel.min_replicas == 0:
            return True
        acked = int(await conn.execute_command("WAIT", sentinel.min_replicas, sentinel.ack_timeout_ms))
        if acked >= sentinel.min_replicas:
            return True
        connected = int((await conn.info("replication")).get("connected_slaves", 0))
        if acked >= connected:  # a lone master (its peers gone or not yet attached): all there is has it
            return True
        raise NotReplicated(f"batch {seq}: {acked} of {min(sentinel.min_replicas, connected)} replicas confirmed "
                            f"it within {sentinel.ack_timeout_ms} ms")
    finally:
        await conn.aclose()
