"""Neo4j probe (the official `neo4j` async driver, bolt:// or neo4j:// URLs).

Latency is one ``RETURN 1`` round trip in `database` (default ``system``, which is online
whenever the DBMS is; name your own database to make its unavailability a *down*). Version
and edition come from ``CALL dbms.components()``, database states from ``SHOW DATABASES``.
Metrics: databases, databases_online, databases_offline (any currentStatus but online),
database.<name>.online (1/0; in a cluster 1 only when every member reports online),
edition_enterprise (1/0). Details: edition, agent, protocol, databases (name, type, status,
requested, message, role, default, home, members).
Over TLS (bolt+s, neo4j+s, ...+ssc, or a tls: block): tls.cert_expiry_days and tls.cert_expired, read by
a handshake of its own, hourly (the driver keeps its sockets to itself). A tls: block maps onto the driver's
own options: encrypted, trusted_certificates (TrustCustomCAs(ca_file), TrustAll() for verify: false) and
client_certificate; with it the url's scheme is bolt:// or neo4j:// (a +s scheme is read as its plain one).
Down: unreachable, timed out, "authentication failed: ...", or `database` unavailable.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.kind import CapacityItem
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.tls_config import TlsSettings, TlsTarget
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe, describe_error

if TYPE_CHECKING:
    from neo4j import AsyncDriver


class _Neo4j:
    """The neo4j driver's names, imported on first use: the driver takes about a second to import, which
    validating a config (every `hulk-ops report`, the dashboard) must not pay."""

    def __getattr__(self, name: str) -> Any:
        import neo4j
        from neo4j import exceptions
        from neo4j.auth_management import ClientCertificate

        found = {n: getattr(neo4j, n) for n in ("AsyncGraphDatabase", "TrustAll", "TrustCustomCAs", "TrustSystemCAs",
                                                 "READ_ACCESS")}
        found.update({n: getattr(exceptions, n) for n in ("AuthError", "DatabaseUnavailable", "Neo4jError",
                                                           "ServiceUnavailable", "SessionExpired")})
        found["ClientCertificate"] = ClientCertificate
        self.__dict__.update(found)
        return found[name]


N = _Neo4j()

SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
DATABASE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class Settings(TlsTarget):
    kind: Literal["neo4j"]
    tls_unsupported = (("server_name", "the neo4j driver verifies the url's host; put that name in the url"),)
    username: str = Field("neo4j", min_length=1)
    password: SecretStr | None = None  # None: the server runs without authentication
    database: str | None = Field(None, pattern=DATABASE_NAME, description="where RETURN 1 runs (default: system)")

    @field_validator("url")
    @classmethod
    def _bolt_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if parts.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)} (e.g. bolt://host:7687), got {value!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {value!r}")
        if parts.username or parts.password:
            raise ValueError("put credentials in username: and password:, not in the url")
        if parts.path not in ("", "/"):
            raise ValueError(f"a Bolt URL has no path, got {parts.path!r}")
        return value


class Neo4jProbe(Probe[Settings, Any]):  # Any: the driver's class is imported lazily
    kind = "neo4j"
    # a pooled connection the server dropped (restart) fails once; the retry uses a fresh driver
    @property
    def transient(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (ConnectionResetError, BrokenPipeError, N.SessionExpired, N.ServiceUnavailable)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cert = tls.CertWatch()

    @property
    def database(self) -> str:
        return self.settings.database or "system"

    def encrypted(self) -> bool:
        return self.settings.tls is not None or "+s" in urlsplit(self.settings.url).scheme

    async def _connect(self) -> AsyncDriver:
        s = self.settings
        auth = (s.username, s.password.get_secret_value()) if s.password else None
        url, tls_config = (s.url, {}) if s.tls is None else driver_tls(s.url, s.tls)
        driver = N.AsyncGraphDatabase.driver(
            url,
            auth=auth,
            **tls_config,
            user_agent="hulk-ops-probe",
            # every wait stays inside the probe's own budget; retries are the probe's business
            connection_timeout=s.timeout_s,
            connection_acquisition_timeout=s.timeout_s,
            connection_write_timeout=s.timeout_s,
            max_transaction_retry_time=0.0,
            max_connection_pool_size=2,
            telemetry_disabled=True,
        )
        try:
            await self._query(driver, "RETURN 1", self.database)  # connect and log on now: steady-state latency
        except BaseException:
            await driver.close()
            raise
        return driver

    async def _close(self, client: AsyncDriver) -> None:
        await client.close()

    async def _measure(self, client: AsyncDriver) -> Measurement:
        started = time.perf_counter()
        _, summary = await self._query(client, "RETURN 1", self.database)
        latency_ms = (time.perf_counter() - started) * 1000
        components, _ = await self._query(client, "CALL dbms.components()", self.database)
        databases, _ = await self._query(client, "SHOW DATABASES", "system")
        version, edition = kernel_component(components)
        metrics = database_metrics(databases)
        metrics["edition_enterprise"] = edition == "enterprise"
        if self.encrypted():
            metrics.update(tls.cert_metrics(await self._cert.get(self._read_cert)))
        protocol = summary.server.protocol_version
        return Measurement(
            latency_ms=latency_ms,
            version=version,
            metrics=metrics,
            details={
                "edition": edition,
                "agent": summary.server.agent,
                "protocol": f"{protocol[0]}.{protocol[1]}" if protocol else None,
                "databases": database_details(databases),
            },
        )

    async def _read_cert(self) -> bytes | None:
        parts = urlsplit(self.settings.url)
        return await tls.handshake_der(parts.hostname or "", parts.port or 7687, tls.reading_context(self.settings.tls),
                                       None)

    @staticmethod
    async def _query(driver: AsyncDriver, query: str, database: str) -> tuple[list[dict[str, Any]], Any]:
        async with driver.session(database=database, default_access_mode=N.READ_ACCESS) as session:
            result = await session.run(query)
            records = [record.data() async for record in result]
            summary = await result.consume()
        return records, summary

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, N.AuthError):
            return f"authentication failed: {exc.message or exc.code}"
        if isinstance(exc, N.DatabaseUnavailable):
            return f"database unavailable: {exc.message}"
        if isinstance(exc, N.Neo4jError):
            return f"{exc.code}: {exc.message}"
        if isinstance(exc, N.ServiceUnavailable | N.SessionExpired):
            # neo4j:// says only "Unable to retrieve routing information"; each router's reason is in the group
            if isinstance(exc.__cause__, BaseExceptionGroup) and exc.__cause__.exceptions:
                first = exc.__cause__.exceptions[0]
                return self.describe(first) or describe_error(first, self.settings.url, self.settings.timeout_s)
            if not _caused_by_os_error(exc):
                return f"service unavailable: {exc}"
        return None


def driver_tls(url: str, options: TlsSettings) -> tuple[str, dict[str, Any]]:
    """The url (a +s/+ssc scheme read as its plain one: the driver refuses TLS options beside it) and the driver's
    own TLS options for a tls: block."""
    parts = urlsplit(url)
    plain = parts._replace(scheme=parts.scheme.split("+")[0]).geturl()
    if not options.verify:
        trust: Any = N.TrustAll()
    elif options.ca_file:
        trust = N.TrustCustomCAs(options.ca_file)
    else:
        trust = N.TrustSystemCAs()
    config: dict[str, Any] = {"encrypted": True, "trusted_certificates": trust}
    if options.cert_file and options.key_file:
        config["client_certificate"] = N.ClientCertificate(options.cert_file, options.key_file)
    return plain, config


def _caused_by_os_error(exc: BaseException) -> bool:
    """A network error underneath: the generic describer names it (refused, reset, timed out)."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if isinstance(current, OSError):
            return True
        current = current.__cause__ or current.__context__
    return False


def kernel_component(rows: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(version, edition) of the "Neo4j Kernel" row of dbms.components()."""
    for row in rows:
        if row.get("name") == "Neo4j Kernel":
            versions = row.get("versions") or []
            return (str(versions[0]) if versions else None), row.get("edition")
    return None, None


def _by_name(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[str(row.get("name"))].append(row)
    return grouped


def database_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """SHOW DATABASES rows (one per database and member) -> counts and database.<name>.online."""
    metrics: dict[str, Any] = {}
    online = 0
    grouped = _by_name(rows)
    for name, members in grouped.items():
        is_online = all(m.get("currentStatus") == "online" for m in members)
        metrics[f"database.{name}.online"] = is_online
        online += is_online
    metrics.update(databases=len(grouped), databases_online=online, databases_offline=len(grouped) - online)
    return metrics


def database_details(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, members in sorted(_by_name(rows).items()):
        worst = next((m for m in members if m.get("currentStatus") != "online"), members[0])
        out.append({
            "name": name,
            "type": worst.get("type"),
            "status": worst.get("currentStatus"),
            "requested": worst.get("requestedStatus"),
            "message": worst.get("statusMessage") or worst.get("error") or "",  # 5.x / 4.4 column
            "role": worst.get("role"),
            "default": bool(worst.get("default")),
            "home": bool(worst.get("home")),
            "members": len(members),
        })
    return out


# Metrics kept as history by the store (capacity trends).
TRACKED_METRICS = ("databases", "databases_offline", "database.*.online")

def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    if "databases" in m:
        yield CapacityItem("databases", m["databases"], None, "count", "databases")
    if "databases_offline" in m:
        yield CapacityItem("databases offline", m["databases_offline"], None, "count", "databases_offline")


CATALOG = Catalog([
    MetricSpec("databases", "Databases of the DBMS"),
    MetricSpec("databases_online", "Databases online"),
    MetricSpec("databases_offline", "Databases in any state but online"),
    MetricSpec("database.<database>.online", "1 when the database is online (on every member)"),
    MetricSpec("edition_enterprise", "1 on the enterprise edition"),
    *tls.METRICS,
])

DISPLAY_NAME = "Neo4j"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = ("database.*.online < 1", "latency_ms > 1000", *tls.RULES)
def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    """Rule messages naming the database and its state (from the result's details)."""
    name = breach.between(metric, "database.", ".online")
    if name is None or value:
        return None
    row: dict[str, Any] = next((d for d in (result.details or {}).get("databases") or [] if d.get("name") == name), {})
    state = row.get("status") or "not online"
    message = f" ({row['message']})" if row.get("message") else ""
    return f"database {name}: {state}{message}"


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "neo4j", "url": "bolt://127.0.0.1:7687", "password": "pw"}


def warm() -> None:
    """Import the client library now: the registry calls this before the first probe of the kind, so the import
    stays out of that probe's timeout (and out of validating a config)."""
    N.AsyncGraphDatabase  # noqa: B018  (the attribute access imports)

PROBE = Neo4jProbe
