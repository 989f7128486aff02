"""MySQL / MariaDB probe (asyncmy: asyncio-native, its protocol code compiled with Cython).

`url` is mysql://user[:password]@host[:port][/database]. Latency is one `SELECT 1`. Metrics: threads_connected,
threads_running, max_connections, connections_used_pct, max_used_connections, uptime_s, queries (a counter),
queries_per_sec (the rate since the previous cycle; the average since start on the first), slow_queries,
aborted_connects, read_only; replicas only (SHOW REPLICA STATUS answers a row): replica_io_running,
replica_sql_running, replication_lag_s (absent while the SQL thread is stopped); databases and, per schema
(system schemas left out, at most `max_databases`), database.<database>.size_bytes (data + index), read at most
every `database_size_every_s` (default 60 s; 0: every cycle) and reported in between as last read: summing
information_schema.tables reads every table's metadata, the heaviest query of a cycle on a server with many tables.
Details: role, server_version, version_comment, replication (source host, errors).
Down: unreachable, timed out, "authentication failed: ...", "access denied: ..." (to the URL's database),
"database does not exist: ...".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import asyncmy
from asyncmy.errors import MySQLError
from pydantic import Field, SecretStr, field_validator

from hulk_ops.sdk import (
    CapacityItem,
    Catalog,
    Measurement,
    MetricSpec,
    Occasional,
    Probe,
    ProbeResult,
    TargetSettings,
    breach_number,
    limit_of,
)

STATUS = ("Threads_connected", "Threads_running", "Max_used_connections", "Uptime", "Queries", "Slow_queries",
          "Aborted_connects")
SIZES_SQL = """
SELECT table_schema, COALESCE(SUM(data_length + index_length), 0)
FROM information_schema.tables
WHERE table_schema NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys')
GROUP BY table_schema ORDER BY 2 DESC LIMIT %s
"""
LOGIN_DENIED = {1045, 1698}
SCHEMA_DENIED = 1044
SYNTAX_ERROR = 1064
CONNECTION_LOST = {2006, 2013}  # server gone away, lost connection during query


class Settings(TargetSettings):
    kind: Literal["mysql"]
    password: SecretStr | None = Field(None, description="overrides a password in the URL")
    max_databases: int = Field(50, ge=0, le=10_000, description="schemas whose size is reported, largest first")
    database_size_every_s: float = Field(60.0, ge=0, le=86_400, description=(
        "read the schemas' sizes at most this often (0: every cycle); information_schema.tables reads every table"))

    @field_validator("url")
    @classmethod
    def _mysql_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ValueError(f"must be mysql://user[:password]@host[:port][/database], got {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in {value!r}: {exc}") from None
        return value


class MysqlProbe(Probe[Settings, Any]):
    kind = "mysql"
    transient = (ConnectionResetError, BrokenPipeError)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous: tuple[float, float, float] | None = None  # (monotonic time, uptime_s, queries) last cycle
        self._sizes: Occasional[list[tuple[str, Any]]] = Occasional()

    async def _connect(self) -> Any:
        s = self.settings
        parts = urlsplit(s.url)
        password = s.password.get_secret_value() if s.password else unquote(parts.password or "")
        self._sizes.forget()  # a new connection reads them again
        try:
            return await asyncmy.connect(
                host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
                password=password, db=unquote(parts.path.lstrip("/")) or None, connect_timeout=s.timeout_s,
                autocommit=True,
            )
        except MySQLError as exc:
            lost = _connection_lost(exc)
            if lost is None:
                raise
            raise lost from exc

    async def _close(self, client: Any) -> None:
        client.close()

    async def _measure(self, client: Any) -> Measurement:
        try:
            return await self._read(client)
        except MySQLError as exc:
            lost = _connection_lost(exc)
            if lost is None:
                raise
            raise lost from exc

    async def _read(self, client: Any) -> Measurement:
        async with client.cursor() as cur:
            started = time.perf_counter()
            await cur.execute("SELECT 1")
            await cur.fetchall()
            latency_ms = (time.perf_counter() - started) * 1000
            await cur.execute("SELECT VERSION(), @@version_comment, @@max_connections, @@read_only")
            version, comment, max_connections, read_only = await cur.fetchone()
            await cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN %s", (STATUS,))
            status = {name: float(value) for name, value in await cur.fetchall()}
            replica, replica_problem = await _replica_status(cur)
            sizes: list[tuple[str, Any]] = []
            if self.settings.max_databases:
                if self._sizes.due(self.settings.database_size_every_s):
                    await cur.execute(SIZES_SQL, (self.settings.max_databases,))
                    self._sizes.keep(list(await cur.fetchall()))
                sizes = self._sizes.value or []
        metrics = self._server_metrics(status, int(max_connections), bool(read_only))
        role = "replica" if replica else "unknown" if replica_problem else "primary"
        details: dict[str, Any] = {"role": role, "server_version": version, "version_comment": comment}
        if replica_problem:
            details["replication_error"] = replica_problem
        if replica:
            replica_values, details["replication"] = replica_metrics(replica)
            metrics.update(replica_values)
        metrics["databases"] = len(sizes)
        metrics.update({f"database.{name}.size_bytes": int(size) for name, size in sizes if "." not in name})
        return Measurement(latency_ms=latency_ms, version=str(version).split("-")[0], metrics=metrics,
                           details=details)

    def _server_metrics(self, status: dict[str, float], max_connections: int, read_only: bool) -> dict[str, Any]:
        connected = status.get("Threads_connected", 0.0)
        uptime, queries = status.get("Uptime", 0.0), status.get("Queries", 0.0)
        now = time.monotonic()
        previous, self._previous = self._previous, (now, uptime, queries)
        if previous is not None and now > previous[0] and uptime >= previous[1] and queries >= previous[2]:
            rate = (queries - previous[2]) / (now - previous[0])
        else:  # first cycle, or the server restarted: the average since it started
            rate = queries / uptime if uptime > 0 else 0.0
        return {
            "threads_connected": connected,
            "threads_running": status.get("Threads_running"),
            "max_connections": max_connections,
            "connections_used_pct": round(100.0 * connected / max_connections, 2) if max_connections else None,
            "max_used_connections": status.get("Max_used_connections"),
            "uptime_s": uptime,
            "queries": queries,
            "queries_per_sec": round(rate, 3),
            "slow_queries": status.get("Slow_queries"),
            "aborted_connects": status.get("Aborted_connects"),
            "read_only": read_only,
        }

    def describe(self, exc: BaseException) -> str | None:
        code = exc.args[0] if isinstance(exc, MySQLError) and exc.args else None
        message = exc.args[1] if isinstance(exc, MySQLError) and len(exc.args) > 1 else str(exc)
        if code in LOGIN_DENIED:
            return f"authentication failed: {message}"
        if code == SCHEMA_DENIED:
            return f"access denied: {message}"
        if code == 1049:
            return f"database does not exist: {message}"
        if code == 1040:
            return f"too many connections: {message}"
        return None


def _connection_lost(exc: MySQLError) -> OSError | None:
    """The OSError a lost connection is (asyncmy reports it as OperationalError 2006/2013): a reset or a close is
    then retried on a fresh connection and described like every other client's."""
    if not exc.args or exc.args[0] not in CONNECTION_LOST:
        return None
    text = str(exc.args[-1])
    return (ConnectionResetError if "reset" in text.lower() else BrokenPipeError)(f"connection lost: {text}")


async def _replica_status(cur: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The replica's status row (None on a server that replicates from nobody) and why it could not be read.

    MariaDB 10.5+ and MySQL 8.0.22+ know SHOW REPLICA STATUS, older servers only SHOW SLAVE STATUS. Reading it
    needs REPLICATION CLIENT (MySQL) or SLAVE MONITOR (MariaDB); without it the role is unknown, not primary.
    """
    for statement in ("SHOW REPLICA STATUS", "SHOW SLAVE STATUS"):
        try:
            await cur.execute(statement)
        except MySQLError as exc:
            if exc.args and exc.args[0] == SYNTAX_ERROR:
                continue
            return None, f"replication status not readable: {exc.args[-1] if exc.args else exc}"
        row = await cur.fetchone()
        if not row:
            return None, None
        return {d[0]: v for d, v in zip(cur.description, row, strict=True)}, None
    return None, None


def replica_metrics(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A replica's metrics and details from its status row (MySQL 8 names Source/Replica, older Master/Slave)."""
    def field(*names: str) -> Any:
        return next((row[n] for n in names if n in row), None)

    io = str(field("Replica_IO_Running", "Slave_IO_Running") or "No")
    sql = str(field("Replica_SQL_Running", "Slave_SQL_Running") or "No")
    lag = field("Seconds_Behind_Source", "Seconds_Behind_Master")
    metrics: dict[str, Any] = {"replica_io_running": io == "Yes", "replica_sql_running": sql == "Yes"}
    if lag is not None:
        metrics["replication_lag_s"] = float(lag)
    details = {"source": field("Source_Host", "Master_Host"), "io_running": io, "sql_running": sql,
               "last_io_error": field("Last_IO_Error") or None, "last_sql_error": field("Last_SQL_Error") or None}
    return metrics, details


def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    if "threads_connected" in m:
        yield CapacityItem("connections", m["threads_connected"], limit_of(m, "max_connections"), "count",
                           "threads_connected")
    for name in sorted(m):
        parts = name.split(".")
        if parts[0] == "database" and len(parts) == 3 and parts[2] == "size_bytes":
            yield CapacityItem(f"database {parts[1]} size", m[name], None, "bytes", name)


CATALOG = Catalog([
    MetricSpec("threads_connected", "Client connections open"),
    MetricSpec("threads_running", "Connections running a statement"),
    MetricSpec("max_connections", "The max_connections setting"),
    MetricSpec("connections_used_pct", "Client connections of max_connections", unit="ratio", scale=0.01,
               prom="connections_used_ratio"),
    MetricSpec("max_used_connections", "Most connections open at once since start"),
    MetricSpec("uptime_s", "Time since the server started", unit="seconds", prom="uptime_seconds"),
    MetricSpec("queries", "Statements executed since start", type="counter"),
    MetricSpec("queries_per_sec", "Statements per second since the previous cycle", prom="queries_per_second"),
    MetricSpec("slow_queries", "Statements slower than long_query_time since start", type="counter"),
    MetricSpec("aborted_connects", "Failed connection attempts since start", type="counter"),
    MetricSpec("read_only", "1 when the server is read_only"),
    MetricSpec("replica_io_running", "1 when this replica's I/O thread runs"),
    MetricSpec("replica_sql_running", "1 when this replica's SQL thread runs"),
    MetricSpec("replication_lag_s", "This replica's time behind its source", unit="seconds",
               prom="replication_lag_seconds"),
    MetricSpec("databases", "Schemas whose size is reported"),
    MetricSpec("database.<database>.size_bytes", "Data and index size of the schema (read every "
               "database_size_every_s)", unit="bytes"),
])
TRACKED_METRICS = ("threads_connected", "connections_used_pct", "queries_per_sec", "replication_lag_s",
                   "database.*.size_bytes")
DISPLAY_NAME = "MySQL / MariaDB"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "connections_used_pct > 90",
    "replication_lag_s > 300",
    "replica_sql_running < 1",
    "replica_io_running < 1",
    "latency_ms > 1000",
)


def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    """Rule messages naming the replication source (the replication errors stay on the target page)."""
    m = result.metrics
    source = ((result.details or {}).get("replication") or {}).get("source")
    replication = f"replication from {source}" if source else "replication"
    if metric in ("replica_sql_running", "replica_io_running") and not value:
        return f"{replication}: {'SQL' if metric == 'replica_sql_running' else 'IO'} thread not running"
    if metric == "replication_lag_s":
        return f"{replication}: {breach_number(round(value))} s behind"
    if metric == "connections_used_pct" and "threads_connected" in m and "max_connections" in m:
        return (f"connections: {breach_number(m['threads_connected'])} of {breach_number(m['max_connections'])} "
                f"({breach_number(value)}%)")
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "mysql", "url": "mysql://monitor@127.0.0.1:3306", "password": "pw"}

PROBE = MysqlProbe
