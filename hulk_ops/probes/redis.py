"""Redis probe (redis-py asyncio).

Latency is one PING. Metrics: used_memory_bytes, maxmemory_bytes, memory_used_pct (only when a
maxmemory is set), connected_clients, maxclients, clients_used_pct, ops_per_sec, evicted_keys,
rejected_connections, uptime_s, is_primary, connected_replicas, replica_link_up (replicas only),
keyspace.<db>.keys, keyspace.<db>.expires; with TLS (rediss:// or a tls: block) tls.cert_expiry_days and
tls.cert_expired, read from the probe's own connection. Details: role.
INFO is read every cycle (not every Nth): memory, clients, ops and keys change between cycles, and the
rarely changing fields (version, maxmemory, role) come in the same reply at no extra cost.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis._parsers import _AsyncRESP3Parser
from redis.asyncio.connection import Connection, ConnectionPool
from redis.backoff import NoBackoff
from redis.event import EventDispatcher
from redis.exceptions import AuthenticationError, AuthorizationError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.kind import CapacityItem, limit_of
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.tls_config import TlsTarget
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe


class Settings(TlsTarget):
    kind: Literal["redis"]
    password: SecretStr | None = None

    def uses_tls(self) -> bool:
        return self.url.startswith("rediss://") or self.tls is not None


# What every probe client shares or leaves out, to keep a connection held by each of 10,000 targets small
# (bench/collector.py, 10,000 targets: ~460 MB of RSS with redis-py's defaults, ~307 MB with these):
# - redis-py's pure-Python RESP parser, not hiredis: hiredis keeps its read buffer (about twice the ~5 KB INFO
#   reply) until the next reply arrives, a cycle later; redis-py's parser clears its own after each reply (the two
#   cost the same CPU on PING and INFO's one bulk string);
# - one event dispatcher: redis-py builds three per client (client, pool, connection); its listeners hold state
#   only for a streaming credential provider (re-authentication), which probes never use;
# - no maintenance notifications (a managed Redis's hint to relax timeouts during its own maintenance): a
#   probe reports what a client sees, and the handler is more objects per connection.
_LEAN: dict[str, Any] = {"parser_class": _AsyncRESP3Parser, "event_dispatcher": EventDispatcher(),
                         "maint_notifications_config": MaintNotificationsConfig(enabled=False)}


class TlsConnection(Connection):
    """redis-py's TCP connection over the probe's own SSLContext, sending `server_name` (redis-py's SSLConnection
    builds its context from file paths and always verifies the url's host); it keeps the server certificate."""

    def __init__(self, *, tls_context: ssl.SSLContext, tls_server_name: str | None = None, **kwargs: Any) -> None:
        self.tls_context = tls_context
        self.tls_server_name = tls_server_name
        self.peer_der: bytes | None = None
        super().__init__(**kwargs)

    def _connection_arguments(self) -> Any:
        return {**super()._connection_arguments(), "ssl": self.tls_context,
                "server_hostname": self.tls_server_name or self.host}

    async def _connect(self) -> None:
        await super()._connect()
        self.peer_der = tls.peer_der(self._writer.get_extra_info("ssl_object") if self._writer else None)


class RedisProbe(Probe[Settings, aioredis.Redis]):
    kind = "redis"

    async def _connect(self) -> aioredis.Redis:
        s = self.settings
        pool = ConnectionPool.from_url(
            s.url,
            password=s.password.get_secret_value() if s.password else None,
            socket_connect_timeout=s.timeout_s,
            socket_timeout=None,  # check() bounds every probe by timeout_s: no timer per read and write
            retry=Retry(NoBackoff(), 0),  # retries are the probe's business, inside its timeout
            client_name="hulk-ops-probe",
            **_LEAN,
        )
        client = aioredis.Redis(connection_pool=pool, single_connection_client=True,
                                event_dispatcher=_LEAN["event_dispatcher"])
        client.auto_close_connection_pool = True  # the client owns its pool (as from_url's would)
        if s.uses_tls():
            pool = client.connection_pool
            pool.connection_class = TlsConnection
            for name in [k for k in pool.connection_kwargs if k.startswith("ssl_")]:  # ?ssl_...= url options
                pool.connection_kwargs.pop(name)
            pool.connection_kwargs.update(tls_context=await asyncio.to_thread(tls.client_context, s.tls),
                                          tls_server_name=s.tls.server_name if s.tls else None)
        # INFO is parsed here, keeping only what the metrics need (redis-py's parser builds ~200 typed fields);
        # and every probe's client shares one table of reply callbacks (redis-py copies its ~170 entries into
        # each client: 13 KB a target, 130 MB for 10,000 targets)
        client.response_callbacks = _callbacks(client)
        try:
            await client.ping()  # connect now, so the measured PING is the steady-state round trip
        except BaseException:
            await client.aclose()
            raise
        return client

    async def _close(self, client: aioredis.Redis) -> None:
        await client.aclose()

    async def _measure(self, client: aioredis.Redis) -> Measurement:
        # the client's own connection, command by command (redis-py's Connection API): `execute_command`'s
        # lock, retry wrapper, reply callbacks and operation metrics were a third of a probe's CPU, for one
        # request at a time on a connection no one else uses; an error reply still raises (ResponseError)
        conn = client.connection
        if conn is None:
            raise ConnectionError("the probe's Redis connection is gone")
        ping, info_command = _packed(conn)
        started = time.perf_counter()
        await conn.send_packed_command(ping, check_health=False)
        await conn.read_response()
        latency_ms = (time.perf_counter() - started) * 1000
        await conn.send_packed_command(info_command, check_health=False)
        info = parse_info(await conn.read_response())
        metrics = info_metrics(info)
        if isinstance(conn, TlsConnection):
            metrics.update(tls.cert_metrics(conn.peer_der))
        return Measurement(
            latency_ms=latency_ms,
            version=str(info.get("redis_version") or "") or None,
            metrics=metrics,
            details={"role": info.get("role"), "mode": info.get("redis_mode")},
        )

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, AuthenticationError | AuthorizationError):
            return f"authentication failed: {exc}"
        if isinstance(exc, ResponseError) and "NOAUTH" in str(exc):
            return "authentication failed: the server requires a password (set password: or put it in the url)"
        return None


_PACKED: list[list[bytes]] = []


def _packed(conn: Connection) -> tuple[list[bytes], list[bytes]]:
    """PING and INFO as redis-py packs them (once: they never change)."""
    if not _PACKED:
        _PACKED.extend((conn.pack_command("PING"), conn.pack_command("INFO")))
    return _PACKED[0], _PACKED[1]


def _raw(response: Any, **_options: Any) -> Any:
    return response


_CALLBACKS: dict[str, Any] = {}


def _callbacks(client: aioredis.Redis) -> Any:
    """One reply-callback table for every probe client (they are all configured alike), INFO left raw."""
    if "table" not in _CALLBACKS:
        client.set_response_callback("INFO", _raw)
        _CALLBACKS["table"] = client.response_callbacks
    return _CALLBACKS["table"]


# the fields info_metrics reads, in the order INFO prints them (each search continues from the previous hit)
INFO_FIELDS = (("redis_version", False), ("redis_mode", False), ("uptime_in_seconds", True),
               ("connected_clients", True), ("maxclients", True), ("used_memory", True), ("maxmemory", True),
               ("instantaneous_ops_per_sec", True), ("rejected_connections", True), ("evicted_keys", True),
               ("role", False), ("master_link_status", False), ("connected_slaves", True))
_NEEDLES = tuple((name, f"\n{name}:".encode(), numeric) for name, numeric in INFO_FIELDS)
_KEYSPACE = re.compile(rb"^(db\d+):keys=(\d+),expires=(\d+)", re.M)


def parse_info(raw: bytes | str) -> dict[str, Any]:
    """The INFO fields `info_metrics` reads, typed like redis-py's parser (keyspace lines as dicts).

    Finds each field (`bytes.find`, in print order) instead of parsing all ~200 lines like redis-py does.
    """
    data = b"\n" + (raw.encode() if isinstance(raw, str) else raw)
    info: dict[str, Any] = {}
    pos = 0
    for name, needle, numeric in _NEEDLES:
        start = data.find(needle, pos)
        if start < 0:
            start = data.find(needle)  # another server version's order
            if start < 0:
                continue
        pos = start + len(needle)
        end = data.find(b"\r", pos)
        value = data[pos:end if end >= 0 else None]
        if not numeric:
            info[name] = value.decode()
            continue
        try:
            info[name] = int(value)
        except ValueError:
            try:
                info[name] = float(value)
            except ValueError:
                continue
    keyspace = data.find(b"# Keyspace", pos if pos < len(data) else 0)
    if keyspace < 0:
        keyspace = data.find(b"# Keyspace")
    if keyspace >= 0:
        for db, keys, expires in _KEYSPACE.findall(data, keyspace):
            info[db.decode()] = {"keys": int(keys), "expires": int(expires)}
    return info


def info_metrics(info: dict[str, Any]) -> dict[str, Any]:
    used = info.get("used_memory", 0)
    maxmemory = info.get("maxmemory", 0)
    clients = info.get("connected_clients", 0)
    maxclients = info.get("maxclients")
    metrics: dict[str, Any] = {
        "used_memory_bytes": used,
        "maxmemory_bytes": maxmemory,
        "connected_clients": clients,
        "ops_per_sec": info.get("instantaneous_ops_per_sec"),
        "evicted_keys": info.get("evicted_keys"),
        "rejected_connections": info.get("rejected_connections"),
        "uptime_s": info.get("uptime_in_seconds"),
        "is_primary": info.get("role") == "master",
        "connected_replicas": info.get("connected_slaves"),
    }
    if maxmemory:
        metrics["memory_used_pct"] = round(100.0 * used / maxmemory, 2)
    if maxclients:
        metrics["maxclients"] = maxclients
        metrics["clients_used_pct"] = round(100.0 * clients / maxclients, 2)
    if info.get("role") == "slave":
        metrics["replica_link_up"] = info.get("master_link_status") == "up"
    for db, stats in info.items():
        if db.startswith("db") and db[2:].isdigit() and isinstance(stats, dict):
            metrics[f"keyspace.{db}.keys"] = stats.get("keys")
            metrics[f"keyspace.{db}.expires"] = stats.get("expires")
    return metrics


# Metrics kept as history by the store (capacity trends).
TRACKED_METRICS = ("used_memory_bytes", "memory_used_pct", "connected_clients", "ops_per_sec", "keyspace.*.keys")

def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    if "used_memory_bytes" in m:
        yield CapacityItem("memory", m["used_memory_bytes"], limit_of(m, "maxmemory_bytes"), "bytes",
                           "used_memory_bytes")
    if "connected_clients" in m:
        yield CapacityItem("clients", m["connected_clients"], limit_of(m, "maxclients"), "count", "connected_clients")


CATALOG = Catalog([
    MetricSpec("used_memory_bytes", "Memory used by Redis", unit="bytes"),
    MetricSpec("maxmemory_bytes", "The maxmemory limit (0: none)", unit="bytes"),
    MetricSpec("memory_used_pct", "Memory used of maxmemory", unit="ratio", scale=0.01, prom="memory_used_ratio"),
    MetricSpec("connected_clients", "Client connections"),
    MetricSpec("maxclients", "The maxclients limit"),
    MetricSpec("clients_used_pct", "Client connections of maxclients", unit="ratio", scale=0.01,
               prom="clients_used_ratio"),
    MetricSpec("ops_per_sec", "Commands per second (instantaneous)", prom="ops_per_second"),
    MetricSpec("evicted_keys", "Keys evicted since start", type="counter"),
    MetricSpec("rejected_connections", "Connections refused at maxclients since start", type="counter"),
    MetricSpec("uptime_s", "Time since the server started", unit="seconds", prom="uptime_seconds"),
    MetricSpec("is_primary", "1 on a primary, 0 on a replica"),
    MetricSpec("connected_replicas", "Replicas attached to this primary"),
    MetricSpec("replica_link_up", "1 when this replica's link to its primary is up"),
    MetricSpec("keyspace.<db>.keys", "Keys in the database"),
    MetricSpec("keyspace.<db>.expires", "Keys with an expiry in the database"),
    *tls.METRICS,
])

DISPLAY_NAME = "Redis"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = ("memory_used_pct > 90", "latency_ms > 1000", *tls.RULES)
def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    m = result.metrics
    if metric == "memory_used_pct" and m.get("used_memory_bytes") and m.get("maxmemory_bytes"):
        gib = 1024 ** 3
        return (f"memory: {m['used_memory_bytes'] / gib:.2f} of {m['maxmemory_bytes'] / gib:.2f} GiB "
                f"({breach.number(value)}%)")
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "redis", "url": "redis://127.0.0.1:6379", "password": "pw"}

PROBE = RedisProbe
