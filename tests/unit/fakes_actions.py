"""In-memory fakes of the guard's own ports: the audit log and an executor (never of a client library)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from hulk_ops.actions.audit import AuditFilter, AuditRecord, AuditUnavailable, StoredKey
from hulk_ops.actions.executors.base import ActionFailed, Executor
from hulk_ops.actions.model import ActionRequest, Preview
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import utcnow


class FakeNatsSettings(TargetSettings):
    kind: Literal["nats"] = "nats"


class MemoryAuditLog:
    """Same contract as PostgresAuditLog; `down` makes every call fail like an unreachable database."""

    def __init__(self) -> None:
        self.rows: list[AuditRecord] = []
        self.keys: dict[str, StoredKey] = {}
        self.down = False
        self.fail_on: set[str] = set()  # outcomes whose write fails (e.g. {"started"})
        self._locks: dict[str, asyncio.Lock] = {}
        self._ids = itertools.count(1)

    def _check(self, outcome: str | None = None) -> None:
        if self.down or (outcome is not None and outcome in self.fail_on):
            raise AuditUnavailable("audit store unreachable (memory): down")

    async def append(self, record: AuditRecord) -> int:
        self._check(record.outcome)
        record.id, record.at = next(self._ids), utcnow()
        self.rows.append(record)
        return record.id

    @contextlib.asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[MemoryClaim]:
        self._check()
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield MemoryClaim(self, key, self.keys.get(key))

    async def records(self, flt: AuditFilter | None = None) -> list[AuditRecord]:
        self._check()
        return list(reversed(self.rows))

    async def request(self, request_id: str) -> list[AuditRecord]:
        self._check()
        return [r for r in self.rows if r.request_id == request_id]

    async def pending(self) -> list[AuditRecord]:
        self._check()
        closed = {r.request_id for r in self.rows if r.outcome in ("approved", "rejected")}
        return [r for r in reversed(self.rows) if r.outcome == "pending_approval" and r.request_id not in closed]

    def outcomes(self) -> list[str]:
        return [r.outcome for r in self.rows]


class MemoryClaim:
    def __init__(self, log: MemoryAuditLog, key: str, stored: StoredKey | None) -> None:
        self.log, self.key, self.stored = log, key, stored

    async def record(self, record: AuditRecord) -> int:
        return await self.log.append(record)

    async def start(self, record: AuditRecord, fingerprint: str) -> int:
        self.log._check(record.outcome)
        self.log.keys[self.key] = StoredKey(fingerprint, record.request_id, "running", None)
        return await self.log.append(record)

    async def finish(self, record: AuditRecord, result: dict[str, Any]) -> int:
        self.log._check(record.outcome)
        stored = self.log.keys[self.key]
        self.log.keys[self.key] = StoredKey(stored.fingerprint, stored.request_id, "done", result)
        return await self.log.append(record)


class RecordingExecutor(Executor[ActionRequest]):
    """Previews everything, records executions; class attributes script failures."""

    actions: ClassVar[tuple[str, ...]] = ()
    executed: ClassVar[list[ActionRequest]] = []
    fail_with: ClassVar[Exception | None] = None
    refusal: ClassVar[str | None] = None

    async def preview(self, request: ActionRequest) -> Preview:
        return Preview(summary=f"{request.action} {request.object_name}", object_name=request.object_name,
                       before={"n": 1}, expected={"n": 0}, refusal=type(self).refusal)

    async def _execute(self, request: ActionRequest, preview: Preview) -> dict[str, Any]:
        await asyncio.sleep(0)
        if type(self).fail_with is not None:
            raise type(self).fail_with
        type(self).executed.append(request)
        return {"n": 0}

    @classmethod
    def reset(cls) -> None:
        cls.executed = []
        cls.fail_with = None
        cls.refusal = None


__all__ = ["ActionFailed", "FakeNatsSettings", "MemoryAuditLog", "RecordingExecutor"]
