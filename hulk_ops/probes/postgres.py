"""PostgreSQL probe (asyncpg).

Latency is one `SELECT 1`. Metrics: connections, max_connections, connections_used_pct,
database_size_bytes, oldest_xact_age_s (oldest open transaction of another session),
in_recovery, replication_lag_s (replicas: time behind the primary, 0 when caught up),
replicas (primaries: attached standbys), max_replica_lag_s; over TLS (a tls: block, or the url's
sslmode) tls.cert_expiry_days and tls.cert_expired, read from the probe's own connection.
A tls: block means sslmode=verify-full with its CA and client certificate (verify: false: require).
The stats query runs every cycle (not every Nth): connections, transaction age and replication lag change
between cycles, and max_connections and the version come in the same row at no extra cost. The database
size is read at most every `database_size_every_s` (default 60 s; 0: every cycle) and reported in between
as last read: pg_database_size() stats every file of the database (0.43 ms of server time for 400
relations here, and it grows with them: four times the rest of the query), and a size trend needs no more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.kind import CapacityItem, limit_of
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.tls_config import TlsTarget
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Occasional, Probe
from hulk_ops.probes.lazy import lazy_module

if TYPE_CHECKING:
    import asyncpg
else:
    asyncpg = lazy_module("asyncpg")

STATS_SQL = """
SELECT current_setting('server_version') AS version,
       current_setting('max_connections')::int AS max_connections,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
       {size} AS database_size,
       COALESCE((SELECT extract(epoch FROM max(now() - xact_start))::float8 FROM pg_stat_activity
                  WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
                    AND backend_type = 'client backend'), 0) AS oldest_xact_age,
       pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, 0)
       END AS replication_lag,
       (SELECT count(*) FROM pg_stat_replication) AS replicas,
       (SELECT COALESCE(max(extract(epoch FROM replay_lag))::float8, 0) FROM pg_stat_replication)
           AS max_replica_lag
"""
STATS_WITH_SIZE_SQL = STATS_SQL.format(size="pg_database_size(current_database())")
STATS_SQL = STATS_SQL.format(size="NULL::bigint")


class Settings(TlsTarget):
    kind: Literal["postgres"]
    tls_unsupported = (("server_name", "asyncpg verifies the url's host; put that name in the url"),)
    password: SecretStr | None = None
    database_size_every_s: float = Field(60.0, ge=0, le=86_400, description=(
        "read the database size at most this often (0: every cycle); pg_database_size() stats every file"))


class PostgresProbe(Probe[Settings, "asyncpg.Connection"]):
    kind = "postgres"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._size: Occasional[int] = Occasional()

    @property
    def transient(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (ConnectionResetError, BrokenPipeError, asyncpg.exceptions.ConnectionDoesNotExistError)

    async def _connect(self) -> asyncpg.Connection:
        s = self.settings
        # asyncpg takes an SSLContext as `ssl`: the block's CA, client certificate and verification in one
        context = await asyncio.to_thread(tls.client_context, s.tls) if s.tls is not None else None
        self._size.forget()  # a new connection reads it again (the server may have been restored meanwhile)
        return await asyncpg.connect(
            s.url,
            password=s.password.get_secret_value() if s.password else None,
            ssl=context,
            timeout=s.timeout_s,
            command_timeout=None,  # no timer per query: check() bounds every probe by timeout_s
            server_settings={"application_name": "hulk-ops-probe"},
        )

    async def _close(self, client: asyncpg.Connection) -> None:
        client.terminate()

    async def _measure(self, client: asyncpg.Connection) -> Measurement:
        if client.is_closed():
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        started = time.perf_counter()
        await client.execute("SELECT 1")  # the simple query protocol: one message each way, nothing to decode
        latency_ms = (time.perf_counter() - started) * 1000
        sized = self._size.due(self.settings.database_size_every_s)
        row = await client.fetchrow(STATS_WITH_SIZE_SQL if sized else STATS_SQL)
        size = self._size.keep(row["database_size"]) if sized else self._size.value
        max_conn = row["max_connections"] or 0
        metrics = {
            "connections": row["connections"],
            "max_connections": max_conn,
            "connections_used_pct": round(100.0 * row["connections"] / max_conn, 2) if max_conn else None,
            "database_size_bytes": size,
            "oldest_xact_age_s": round(row["oldest_xact_age"], 3),
            "in_recovery": row["in_recovery"],
            "replicas": row["replicas"],
            "max_replica_lag_s": row["max_replica_lag"],
        }
        if row["replication_lag"] is not None:
            metrics["replication_lag_s"] = row["replication_lag"]
        # asyncpg keeps the transport it upgraded to TLS; the public API has no accessor for the peer certificate
        transport = getattr(client, "_transport", None)
        metrics.update(tls.cert_metrics(tls.peer_der(transport.get_extra_info("ssl_object") if transport else None)))
        return Measurement(
            latency_ms=latency_ms,
            version=row["version"].split(" ")[0],
            metrics=metrics,
            details={"role": "replica" if row["in_recovery"] else "primary", "server_version": row["version"]},
        )

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
            return f"authentication failed: {exc}"
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            return f"database does not exist: {exc}"
        if isinstance(exc, asyncpg.TooManyConnectionsError):
            return f"too many connections: {exc}"
        if isinstance(exc, asyncpg.CannotConnectNowError):
            return f"server not accepting connections: {exc}"
        return None


# Metrics kept as history by the store (capacity trends).
TRACKED_METRICS = (
    "connections", "connections_used_pct", "database_size_bytes", "replication_lag_s", "oldest_xact_age_s",
)

def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    if "connections" in m:
        yield CapacityItem("connections", m["connections"], limit_of(m, "max_connections"), "count", "connections")
    if "database_size_bytes" in m:
        yield CapacityItem("database size", m["database_size_bytes"], None, "bytes", "database_size_bytes")


CATALOG = Catalog([
    MetricSpec("connections", "Client backends connected"),
    MetricSpec("max_connections", "The max_connections setting"),
    MetricSpec("connections_used_pct", "Client backends of max_connections", unit="ratio", scale=0.01,
               prom="connections_used_ratio"),
    MetricSpec("database_size_bytes", "Size of the connected database (read every database_size_every_s)",
               unit="bytes"),
    MetricSpec("oldest_xact_age_s", "Age of the oldest open transaction of another session", unit="seconds",
               prom="oldest_xact_age_seconds"),
    MetricSpec("in_recovery", "1 on a replica (in recovery), 0 on a primary"),
    MetricSpec("replicas", "Standbys attached to this primary"),
    MetricSpec("max_replica_lag_s", "Largest replay lag of an attached standby", unit="seconds",
               prom="max_replica_lag_seconds"),
    MetricSpec("replication_lag_s", "This replica's time behind its primary (0: caught up)", unit="seconds",
               prom="replication_lag_seconds"),
    *tls.METRICS,
])

DISPLAY_NAME = "PostgreSQL"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "connections_used_pct > 90",
    "oldest_xact_age_s > 3600",
    "replication_lag_s > 300",
    "latency_ms > 1000",
    *tls.RULES,
)
def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    m = result.metrics
    if metric == "connections_used_pct" and "connections" in m and "max_connections" in m:
        return (f"connections: {breach.number(m['connections'])} of {breach.number(m['max_connections'])} "
                f"({breach.number(value)}%)")
    if metric == "oldest_xact_age_s":
        return f"a transaction has been open {breach.number(round(value))} s"
    if metric == "replication_lag_s":
        return f"replica {breach.number(round(value))} s behind its primary"
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "postgres", "url": "postgresql://app:pw@127.0.0.1:5432/app"}

PROBE = PostgresProbe
