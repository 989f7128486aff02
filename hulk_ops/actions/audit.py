"""The audit log in PostgreSQL (psycopg 3, async): append-only rows and idempotency keys.

Every call opens its own short connection (actions are rare; a pool would tie the log to one event
loop). Any database failure becomes `AuditUnavailable`: the guard then refuses to execute (fail
closed). `claim()` serialises submits that share an idempotency key with a session advisory lock;
inside it, `start()` writes the audit row 'started' and the key's 'running' row in one transaction,
and `finish()` appends the outcome row and stores the result in another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hulk_ops.actions.migrate import migrate
from hulk_ops.core.action_config import AuditSettings
from hulk_ops.core.config import redact_url
from hulk_ops.core.model import JSON

COLUMNS = ("request_id", "username", "roles", "via", "action", "target", "object", "params", "dry_run", "before",
           "after", "outcome", "error", "idempotency_key", "approver", "expires_at")
JSON_COLUMNS = {"params", "dry_run", "before", "after"}


class AuditUnavailable(Exception):
    """The audit store cannot be written or read; the message is safe to show."""


class KeyBusy(Exception):
    """Another submit holding the same idempotency key did not finish within the lock timeout."""


@dataclass
class AuditRecord:
    request_id: str
    username: str
    action: str
    target: str
    object: str
    params: dict[str, Any]
    outcome: str
    roles: list[str] = field(default_factory=list)
    via: str = "cli"
    dry_run: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: str | None = None
    idempotency_key: str | None = None
    approver: str | None = None
    expires_at: datetime | None = None
    id: int | None = None
    at: datetime | None = None

    def values(self) -> list[Any]:
        return [Jsonb(getattr(self, c)) if c in JSON_COLUMNS and getattr(self, c) is not None else getattr(self, c)
                for c in COLUMNS]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass(frozen=True, slots=True)
class StoredKey:
    fingerprint: str
    request_id: str
    state: str
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    username: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500


class AuditClaim(Protocol):
    """An idempotency key held by one submit (`AuditLog.claim`): what is stored under it, and the writes that
    bracket the execution."""

    stored: StoredKey | None

    async def record(self, record: AuditRecord) -> int: ...

    async def start(self, record: AuditRecord, fingerprint: str) -> int: ...

    async def finish(self, record: AuditRecord, result: dict[str, JSON]) -> int: ...


class AuditLog(Protocol):
    """The guard's audit port: `PostgresAuditLog`, and `MemoryAuditLog` in tests/unit/fakes_actions.py. Every
    method raises `AuditUnavailable` when the log cannot be read or written."""

    async def append(self, record: AuditRecord) -> int: ...

    def claim(self, key: str) -> AbstractAsyncContextManager[AuditClaim]: ...

    async def records(self, flt: AuditFilter | None = None) -> list[AuditRecord]: ...

    async def request(self, request_id: str) -> list[AuditRecord]: ...

    async def pending(self) -> list[AuditRecord]: ...


class PostgresAuditLog:
    def __init__(self, settings: AuditSettings) -> None:
        if not settings.url:
            raise AuditUnavailable("no audit database configured (audit: {url: postgresql://...}): actions are off")
        self.settings = settings
        self.schema = settings.schema_name
        self._migrated = False

    # -- connections ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        where = redact_url(self.settings.url or "")
        try:
            async with asyncio.timeout(self.settings.timeout_s + 1):
                conn = await psycopg.AsyncConnection.connect(
                    self.settings.url or "", autocommit=True, row_factory=dict_row,
                    connect_timeout=max(2, int(self.settings.timeout_s)), application_name="hulk-ops-audit",
                )
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise AuditUnavailable(f"audit store unreachable ({where}): {_first_line(exc)}") from None
        try:
            if not self._migrated:
                await migrate(conn, self.schema)
                self._migrated = True
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            yield conn
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                raise KeyBusy("another submit with this idempotency key is still running") from None
            raise AuditUnavailable(f"audit store error ({where}): {_first_line(exc)}") from None
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def ping(self) -> None:
        async with self._connect() as conn:
            await conn.execute("SELECT 1")

    # -- writes -----------------------------------------------------------------------------
    async def append(self, record: AuditRecord) -> int:
        async with self._connect() as conn:
            return await _insert(conn, record)

    @contextlib.asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[KeyClaim]:
        """Hold the key's advisory lock for the block: concurrent submits with this key wait here."""
        async with self._connect() as conn:
            await conn.execute(sql.SQL("SET lock_timeout = {}").format(
                sql.Literal(f"{int(self.settings.lock_timeout_s * 1000)}ms")))
            lock_id = f"{self.schema}:{key}"
            await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [lock_id])
            try:
                cur = await conn.execute("SELECT * FROM idempotency_keys WHERE key = %s", [key])
                row = await cur.fetchone()
                stored = StoredKey(row["fingerprint"], row["request_id"], row["state"], row["result"]) if row else None
                yield KeyClaim(conn, key, stored)
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [lock_id])

    # -- reads ------------------------------------------------------------------------------
    async def records(self, flt: AuditFilter | None = None) -> list[AuditRecord]:
        flt = flt or AuditFilter()
        where: list[sql.Composable] = []
        args: list[Any] = []
        for column, value in (("username", flt.username), ("action", flt.action), ("target", flt.target),
                              ("outcome", flt.outcome)):
            if value:
                where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                args.append(value)
        if flt.since:
            where.append(sql.SQL("at >= %s"))
            args.append(flt.since)
        if flt.until:
            where.append(sql.SQL("at <= %s"))
            args.append(flt.until)
        query = sql.SQL("SELECT * FROM audit_log {} ORDER BY id DESC LIMIT %s").format(
            sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
        async with self._connect() as conn:
            cur = await conn.execute(query, [*args, flt.limit])
            return [AuditRecord.from_row(r) for r in await cur.fetchall()]

    async def request(self, request_id: str) -> list[AuditRecord]:
        async with self._connect() as conn:
            cur = await conn.execute("SELECT * FROM audit_log WHERE request_id = %s ORDER BY id", [request_id])
            return [AuditRecord.from_row(r) for r in await cur.fetchall()]

    async def pending(self) -> list[AuditRecord]:
        """Requests waiting for approval (expired ones included: the caller shows them as expired)."""
        async with self._connect() as conn:
            cur = await conn.execute(
                "SELECT * FROM audit_log p WHERE p.outcome = 'pending_approval' AND NOT EXISTS ("
                " SELECT 1 FROM audit_log d WHERE d.request_id = p.request_id"
                " AND d.outcome IN ('approved', 'rejected')) ORDER BY p.id DESC LIMIT 200"
            )
            return [AuditRecord.from_row(r) for r in await cur.fetchall()]


class KeyClaim:
    """What the lock holder knows about its key, and the two writes that bracket the execution."""

    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]], key: str, stored: StoredKey | None) -> None:
        self._conn = conn
        self.key = key
        self.stored = stored

    async def record(self, record: AuditRecord) -> int:
        return await _insert(self._conn, record)

    async def start(self, record: AuditRecord, fingerprint: str) -> int:
        async with self._conn.transaction():
            await self._conn.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, request_id, state) VALUES (%s, %s, %s, 'running')",
                [self.key, fingerprint, record.request_id],
            )
            return await _insert(self._conn, record)

    async def finish(self, record: AuditRecord, result: dict[str, Any]) -> int:
        async with self._conn.transaction():
            await self._conn.execute(
                "UPDATE idempotency_keys SET state = 'done', result = %s, finished_at = clock_timestamp()"
                " WHERE key = %s", [Jsonb(result), self.key],
            )
            return await _insert(self._conn, record)


async def _insert(conn: psycopg.AsyncConnection[dict[str, Any]], record: AuditRecord) -> int:
    query = sql.SQL("INSERT INTO audit_log ({}) VALUES ({}) RETURNING id, at").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    )
    cur = await conn.execute(query, record.values())
    row = await cur.fetchone()
    assert row is not None
    record.id, record.at = row["id"], row["at"]
    return int(row["id"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
