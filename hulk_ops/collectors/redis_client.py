"""Clients of the store: one Redis named by `store.redis_url`, the master Redis Sentinel names, or a Redis
Cluster reached through any of its nodes (`store.cluster_url`).

Every part of hulk-ops that reads or writes the store (collector, notifier, sharding leases, dashboard, API,
actions' timeline) builds its client here, so all of them follow a Sentinel failover: redis-py's sentinel
pool asks the sentinels for the master on every new connection and drops a connection that finds a replica.

`replicated()` is what makes a write *acknowledged* under Sentinel: the master and the configured number of
replicas have it (Redis `WAIT`). Replication is asynchronous, so a batch the master took but no replica got
yet would vanish with a killed master; the writer keeps such a batch until it is replicated, and its batch
mark tells whether the (possibly new) master has it.

On a cluster the clients are redis-py's `RedisCluster`: they learn the slot map from the named node, send each
command to the master of its key's slot and follow MOVED/ASK redirects. Keys carry hash tags
(`hulk_ops/collectors/codec.py`), so what must be atomic or read together shares a slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import HiredisRespSerializer
from redis.crc import key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel
from redis.utils import HIREDIS_AVAILABLE

from hulk_ops.collectors.codec import hash_tag
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


def _cluster_retry(retries: int) -> Retry:
    """A cluster client's retries: at least one, made after it re-read the slot map (a node it knew is gone
    after a failover), so a call finds the promoted replica instead of failing on the dead master."""
    return Retry(NoBackoff(), max(retries, 1))


def async_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                 retries: int = 0, cluster: bool = False) -> aioredis.Redis | AsyncRedisCluster:
    """An asyncio client of the store (no retries of its own by default: callers buffer or report).

    `cluster`: `url` names a node of a Redis Cluster (redirects are followed whatever `retries` is)."""
    client, sentinels = _options(sentinel, timeout_s, client_name, retries)
    if cluster:
        return AsyncRedisCluster.from_url(url, **{**client, "retry": _cluster_retry(retries)})
    if sentinel is None:
        return aioredis.Redis.from_url(url, **client)
    return AsyncSentinel(sentinel.endpoints(), **sentinels).master_for(sentinel.master, **client)


def is_cluster(client: Any) -> bool:
    return isinstance(client, AsyncRedisCluster | LazyCluster | RedisCluster)


async def mget_any(client: Any, keys: Sequence[str]) -> list[Any]:
    """MGET of keys that may lie in many slots (a Redis Cluster splits it per slot)."""
    if not keys:
        return []
    if isinstance(client, AsyncRedisCluster):
        return await client.mget_nonatomic(list(keys))
    return await client.mget(list(keys))


async def run_scripts(client: Any, calls: Sequence[tuple[Any, list[str], list[Any]]]) -> list[Any]:
    """Run (script, keys, args) calls: pipelined on one Redis; on a Redis Cluster each call goes to its key's
    master on its own (redis-py's cluster pipeline does not load scripts), a bounded number at a time."""
    if not calls:
        return []
    if isinstance(client, AsyncRedisCluster):
        gate = asyncio.Semaphore(32)

        async def one(script: Any, keys: list[str], args: list[Any]) -> Any:
            async with gate:
                return await script(keys=keys, args=args)

        return list(await asyncio.gather(*(one(*c) for c in calls)))
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        await script(keys=keys, args=args, client=pipe)
    return list(await pipe.execute())


# What a store client raises when the store cannot be reached or refuses: redis-py's cluster client reports
# "no node reachable" with an exception outside the RedisError family.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, RedisClusterException, OSError)


class LazyCluster:
    """A blocking `RedisCluster` built at its first use: building one reads the slot map from the cluster, and
    building a client must do no I/O (a dashboard starts while the store is down and shows a banner). Until a
    build succeeds, every use raises `redis.ConnectionError`."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self._url, self._options = url, options
        self._client: RedisCluster | None = None
        self._slots: dict[str, int] = {}  # hash tag -> slot

    def mget_per_node(self, keys: Sequence[str]) -> list[Any]:
        """MGET of keys in many slots: one MGET per slot, the MGETs of one master in one pipeline. A reply
        that says the slot map changed (MOVED/ASK) makes redis-py's `mget_nonatomic` do it all, following it."""
        cluster = self.built()
        by_slot: dict[int, list[int]] = {}
        for at, key in enumerate(keys):
            tag = hash_tag(key)
            slot = self._slots.get(tag)
            if slot is None:
                slot = key_slot(key.encode())
                if len(self._slots) < 200_000:
                    self._slots[tag] = slot
            by_slot.setdefault(slot, []).append(at)
        by_node: dict[str, tuple[Any, list[list[int]]]] = {}
        for slot, positions in by_slot.items():
            node = cluster.nodes_manager.get_node_from_slot(slot)
            by_node.setdefault(node.name, (node, []))[1].append(positions)
        out: list[Any] = [None] * len(keys)
        for node, groups in by_node.values():
            pipe = node.redis_connection.pipeline(transaction=False)
            for positions in groups:
                pipe.mget([keys[at] for at in positions])
            replies = pipe.execute(raise_on_error=False)
            if any(isinstance(r, Exception) for r in replies):
                return cluster.mget_nonatomic(list(keys))
            for positions, values in zip(groups, replies, strict=True):
                for at, value in zip(positions, values, strict=True):
                    out[at] = value
        return out

    def built(self) -> RedisCluster:
        if self._client is None:
            try:
                self._client = RedisCluster.from_url(self._url, **self._options)
            except RedisClusterException as exc:
                raise redis.ConnectionError(f"no node of the Redis Cluster answers: {exc}") from None
        return self._client

    def register_script(self, script: str) -> Script:
        return Script(self, script.encode())  # type: ignore[arg-type]  # bytes: no encoder asked of the client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.built(), name)


def sync_client(url: str, sentinel: SentinelSettings | None, *, timeout_s: float, client_name: str,
                retries: int = 0, cluster: bool = False) -> Any:
    """A blocking client of the store: `redis.Redis`, or a `LazyCluster` standing for a `RedisCluster`."""
    client, sentinels = _options(sentinel, timeout_s, client_name, retries)
    if cluster:
        return LazyCluster(url, {**client, "retry": _cluster_retry(retries)})
    if sentinel is None:
        return redis.Redis.from_url(url, **client)
    return Sentinel(sentinel.endpoints(), **sentinels).master_for(sentinel.master, **client)


def where(url: str, sentinel: SentinelSettings | None, cluster: bool = False) -> str:
    """The store as error messages name it (credentials never shown)."""
    if cluster:
        return f"Redis Cluster via {redact_url(url)}"
    if sentinel is None:
        return redact_url(url)
    return f"Redis Sentinel master {sentinel.master!r} ({', '.join(sentinel.addresses)})"


class _HiredisPacking:
    """Pack commands with hiredis (C) instead of redis-py's Python packer, which the asyncio client always
    uses: a batch of 500 results is ~5,000 commands, and packing them was a fifth of the collector's CPU."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._serializer.pack(*args)


def packed_commands(client: aioredis.Redis) -> aioredis.Redis:
    """Make `client`'s connections pack with hiredis when it is installed (it is a dependency)."""
    if HIREDIS_AVAILABLE:
        pool = client.connection_pool
        base = pool.connection_class
        if not issubclass(base, _HiredisPacking):
            pool.connection_class = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return client


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
