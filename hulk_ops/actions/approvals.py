"""Four-eyes approval: production requests wait, visible, until an admin other than the requester
approves (then they run through the guard's normal path), someone rejects them, or they expire.

A waiting request is an audit row 'pending_approval' (with its expiry) not followed by 'approved' or
'rejected' rows; its parameters are stored whole, which is why requests carrying secret values
cannot wait (they would have to be stored): RunPod secret references ({{ RUNPOD_SECRET_x }}) can.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hulk_ops.actions import policy
from hulk_ops.actions.audit import AuditRecord, AuditUnavailable
from hulk_ops.actions.executors.base import ActionFailed, ActionRefused
from hulk_ops.actions.model import ActionResult, BadRequest, Principal, parse_request
from hulk_ops.core.model import utcnow

if TYPE_CHECKING:
    from hulk_ops.actions.guard import Context


EXPIRED_VISIBLE = timedelta(days=1)


@dataclass(frozen=True)
class PendingRequest:
    record: AuditRecord
    expired: bool


class ApprovalFlow:
    """Mixed into GuardedAction; uses its helpers (_store, _context, _refuse, _run, ...)."""

    _config: Any

    async def approve(self, principal: Principal, request_id: str) -> ActionResult:
        ctx, record, closed = await self._waiting(principal, request_id)
        if closed:
            return await self._refuse(replace(ctx, principal=principal), f"request {request_id} is already {closed}")
        if record.expires_at and record.expires_at < self._now():
            result = self._result(ctx, "refused", f"request {request_id} expired at {record.expires_at:%Y-%m-%d %H:%M} "
                                                   "UTC", error="expired")
            await self._record_soft(replace(ctx, approver=principal.name), result, "rejected")
            return result
        decision = policy.authorise_approval(principal, record.username, ctx.target)
        if decision.verdict == "deny":
            return await self._refuse(replace(ctx, principal=principal), decision.reason)
        ctx = replace(ctx, approver=principal.name)
        try:
            self._noted("approved", await self._store().append(
                self._record(ctx, "approved", self._result(ctx, "pending_approval", ""))))
        except AuditUnavailable as exc:
            return self._result(ctx, "refused", f"refused: {exc}; nothing was executed", error=str(exc))
        return await self._run(ctx)

    async def reject(self, principal: Principal, request_id: str, reason: str = "") -> ActionResult:
        ctx, _record, closed = await self._waiting(principal, request_id)
        if closed:
            return await self._refuse(replace(ctx, principal=principal), f"request {request_id} is already {closed}")
        if principal.role != "admin" and principal.name != ctx.principal.name:
            return await self._refuse(replace(ctx, principal=principal), "only an admin or the requester may reject")
        result = self._result(ctx, "refused", f"rejected by {principal.name}" + (f": {reason}" if reason else ""),
                              error=reason or "rejected")
        ctx = replace(ctx, approver=principal.name)
        try:
            self._noted("rejected", await self._store().append(self._record(ctx, "rejected", result)))
        except AuditUnavailable as exc:
            return self._result(ctx, "refused", f"refused: {exc}; the request still waits", error=str(exc))
        return result

    async def pending(self) -> list[PendingRequest]:
        """Waiting requests, newest first; expired ones stay listed (as expired) for a day, then drop off."""
        now = self._now()
        rows = await self._store().pending()
        return [PendingRequest(r, bool(r.expires_at and r.expires_at < now)) for r in rows
                if r.expires_at is None or r.expires_at > now - EXPIRED_VISIBLE]

    def _now(self) -> Any:
        return utcnow()

    async def _queue(self, ctx: Context, reason: str) -> ActionResult:
        if ctx.request.has_secrets():
            return await self._refuse(ctx, "a request with secret values cannot wait for approval: reference a "
                                           "RunPod secret ({{ RUNPOD_SECRET_name }}) instead of the value")
        try:
            preview = await self._preview(self._executor(ctx), ctx.request)
        except (ActionRefused, ActionFailed) as exc:
            return await self._refuse(ctx, str(exc))
        if preview.refusal:
            return await self._refuse(ctx, preview.refusal, preview)
        expires = self._now() + timedelta(seconds=self._config.actions.approval_ttl_s)
        result = self._result(ctx, "pending_approval", f"{reason}; request {ctx.request_id} waits until "
                                                       f"{expires:%Y-%m-%d %H:%M} UTC", preview)
        try:
            self._noted("pending_approval", await self._store().append(
                self._record(ctx, "pending_approval", result, expires_at=expires)))
        except AuditUnavailable as exc:
            return self._result(ctx, "refused", f"refused: {exc}; the request was not queued", error=str(exc))
        await self._emit(ctx, result)
        return result

    async def _waiting(self, principal: Principal, request_id: str) -> tuple[Context, AuditRecord, str | None]:
        records = await self._store().request(request_id)
        waiting = [r for r in records if r.outcome == "pending_approval"]
        if not waiting:
            raise BadRequest(f"no request {request_id!r} is waiting for approval")
        record = waiting[0]
        closed = next((r.outcome for r in records if r.outcome in ("approved", "rejected")), None)
        requester = Principal(name=record.username, roles=tuple(record.roles), via=record.via)  # type: ignore[arg-type]
        request = parse_request(record.params)
        ctx = self._context(requester, request, record.idempotency_key)
        return replace(ctx, request_id=request_id), record, closed
