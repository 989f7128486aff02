"""Four-eyes approval: production requests wait, visible, until an admin other than the requester
approves (then they run through the guard's normal path), someone rejects them, or they expire.

A waiting request is an audit row 'pending_approval' (with its expiry) not followed by 'approved' or
'rejected' rows; its parameters are stored whole, which is why requests carrying secret values
cannot wait (they would have to be stored): RunPod secret references ({{ RUNPOD_SECRET_x }}) can.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from hulk_ops.actions import policy
from hulk_ops.actions.audit import AuditRecord, AuditUnavailable
from hulk_ops.actions.executors.base import ActionFailed, ActionRefused
from hulk_ops.actions.model import ActionResult, BadRequest, Principal, parse_request
from hulk_ops.core.model import utcnow

if TYPE_CHECKING:
    from hulk_ops.actions.audit import AuditClaim, AuditLog
    from hulk_ops.actions.executors.base import ActionExecutor
    from hulk_ops.actions.guard import Context
    from hulk_ops.actions.model import ActionRequest, Preview
    from hulk_ops.core.model import JSON


EXPIRED_VISIBLE = timedelta(days=1)


@dataclass(frozen=True)
class PendingRequest:
    record: AuditRecord
    expired: bool


class GuardSteps(Protocol):
    """The guard's own steps an approval decision goes through (hulk_ops/actions/guard.py: GuardedAction)."""

    def _store(self) -> AuditLog: ...
    def _context(self, principal: Principal, request: ActionRequest, key: str | None) -> Context: ...
    def _executor(self, ctx: Context) -> ActionExecutor: ...
    async def _preview(self, executor: ActionExecutor, request: ActionRequest) -> Preview: ...
    async def _refuse(self, ctx: Context, reason: str, preview: Preview | None = None,
                      claim: AuditClaim | None = None) -> ActionResult: ...
    def _result(self, ctx: Context, status: str, message: str, preview: Preview | None = None,
                after: dict[str, JSON] | None = None, error: str | None = None) -> ActionResult: ...
    def _record(self, ctx: Context, outcome: str, result: ActionResult,
                expires_at: datetime | None = None) -> AuditRecord: ...
    async def _record_soft(self, ctx: Context, result: ActionResult, outcome: str) -> None: ...
    def _noted(self, outcome: str, row_id: int) -> int: ...
    async def _run(self, ctx: Context) -> ActionResult: ...
    async def _emit(self, ctx: Context, result: ActionResult) -> None: ...


class Approvals:
    """Queue, approve, reject and list waiting requests, through the guard's steps; a waiting request expires
    `approval_ttl_s` after it was queued."""

    def __init__(self, guard: GuardSteps, approval_ttl_s: float) -> None:
        self._guard = guard
        self._ttl = timedelta(seconds=approval_ttl_s)

    async def approve(self, principal: Principal, request_id: str) -> ActionResult:
        g = self._guard
        ctx, record, closed = await self._waiting(principal, request_id)
        if closed:
            return await g._refuse(replace(ctx, principal=principal), f"request {request_id} is already {closed}")
        if record.expires_at and record.expires_at < self._now():
            result = g._result(ctx, "refused", f"request {request_id} expired at {record.expires_at:%Y-%m-%d %H:%M} "
                                            "UTC", error="expired")
            await g._record_soft(replace(ctx, approver=principal.name), result, "rejected")
            return result
        decision = policy.authorise_approval(principal, record.username, ctx.target)
        if decision.verdict == "deny":
            return await g._refuse(replace(ctx, principal=principal), decision.reason)
        ctx = replace(ctx, approver=principal.name)
        try:
            g._noted("approved", await g._store().append(
                g._record(ctx, "approved", g._result(ctx, "pending_approval", ""))))
        except AuditUnavailable as exc:
            return g._result(ctx, "refused", f"refused: {exc}; nothing was executed", error=str(exc))
        return await g._run(ctx)

    async def reject(self, principal: Principal, request_id: str, reason: str = "") -> ActionResult:
        g = self._guard
        ctx, _record, closed = await self._waiting(principal, request_id)
        if closed:
            return await g._refuse(replace(ctx, principal=principal), f"request {request_id} is already {closed}")
        if principal.role != "admin" and principal.name != ctx.principal.name:
            return await g._refuse(replace(ctx, principal=principal), "only an admin or the requester may reject")
        result = g._result(ctx, "refused", f"rejected by {principal.name}" + (f": {reason}" if reason else ""),
                           error=reason or "rejected")
        ctx = replace(ctx, approver=principal.name)
        try:
            g._noted("rejected", await g._store().append(g._record(ctx, "rejected", result)))
        except AuditUnavailable as exc:
            return g._result(ctx, "refused", f"refused: {exc}; the request still waits", error=str(exc))
        return result

    async def pending(self) -> list[PendingRequest]:
        """Waiting requests, newest first; expired ones stay listed (as expired) for a day, then drop off."""
        g = self._guard
        now = self._now()
        rows = await g._store().pending()
        return [PendingRequest(r, bool(r.expires_at and r.expires_at < now)) for r in rows
                if r.expires_at is None or r.expires_at > now - EXPIRED_VISIBLE]

    def _now(self) -> datetime:
        return utcnow()

    async def queue(self, ctx: Context, reason: str) -> ActionResult:
        g = self._guard
        if ctx.request.has_secrets():
            return await g._refuse(ctx, "a request with secret values cannot wait for approval: reference a "
                                        "RunPod secret ({{ RUNPOD_SECRET_name }}) instead of the value")
        try:
            preview = await g._preview(g._executor(ctx), ctx.request)
        except (ActionRefused, ActionFailed) as exc:
            return await g._refuse(ctx, str(exc))
        if preview.refusal:
            return await g._refuse(ctx, preview.refusal, preview)
        expires = self._now() + self._ttl
        result = g._result(ctx, "pending_approval", f"{reason}; request {ctx.request_id} waits until "
                                                    f"{expires:%Y-%m-%d %H:%M} UTC", preview)
        try:
            g._noted("pending_approval", await g._store().append(
                g._record(ctx, "pending_approval", result, expires_at=expires)))
        except AuditUnavailable as exc:
            return g._result(ctx, "refused", f"refused: {exc}; the request was not queued", error=str(exc))
        await g._emit(ctx, result)
        return result

    async def _waiting(self, principal: Principal, request_id: str) -> tuple[Context, AuditRecord, str | None]:
        g = self._guard
        records = await g._store().request(request_id)
        waiting = [r for r in records if r.outcome == "pending_approval"]
        if not waiting:
            raise BadRequest(f"no request {request_id!r} is waiting for approval")
        record = waiting[0]
        closed = next((r.outcome for r in records if r.outcome in ("approved", "rejected")), None)
        requester = Principal(name=record.username, roles=tuple(record.roles), via=record.via)
        request = parse_request(record.params)
        ctx = g._context(requester, request, record.idempotency_key)
        return replace(ctx, request_id=request_id), record, closed
