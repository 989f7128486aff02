"""GuardedAction: the one way to change anything. The dashboard and the CLI both call it.

    request -> authorise (roles, read-only, production; deny by default) -> dry-run -> confirmation
            -> audit row 'started' committed with the idempotency key (fail closed)
            -> execute with a one-use Permit -> audit outcome row + stored result

Production targets with four_eyes wait as 'pending_approval' until an admin other than the requester
approves (or they expire). A submit whose idempotency key was already used gets the stored result
('replayed'); the same key with other parameters is refused. Executors are held privately and run
only with a Permit minted here after the audit write.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeAlias

import structlog
from pydantic import ValidationError

from hulk_ops.actions import policy
from hulk_ops.actions.approvals import Approvals, PendingRequest
from hulk_ops.actions.audit import (
    AuditClaim,
    AuditFilter,
    AuditLog,
    AuditRecord,
    AuditUnavailable,
    KeyBusy,
    PostgresAuditLog,
)
from hulk_ops.actions.executors.base import ActionExecutor, ActionFailed, ActionRefused
from hulk_ops.actions.model import (
    REQUEST_TYPES,
    ActionRequest,
    ActionResult,
    BadRequest,
    Preview,
    Principal,
    describe_validation,
)
from hulk_ops.actions.permit import PermitError, _mint
from hulk_ops.actions.timeline import Timeline
from hulk_ops.core.config import Config, TargetSettings
from hulk_ops.core.model import JSON
from hulk_ops.observe import tracing

log = structlog.get_logger("hulk_ops.actions")
EXECUTORS = {
    "purge_stream": "hulk_ops.actions.executors.nats:NatsPurge",
    "scale": "hulk_ops.actions.executors.kubernetes:KubernetesScale",
    "restart": "hulk_ops.actions.executors.kubernetes:KubernetesRestart",
    "launch_gpu": "hulk_ops.actions.executors.runpod:RunPodActions",
    "run_job": "hulk_ops.actions.executors.runpod:RunPodActions",
    "endpoint_workers": "hulk_ops.actions.executors.runpod:RunPodActions",
    "stop_pod": "hulk_ops.actions.executors.runpod:RunPodActions",
    "terminate_pod": "hulk_ops.actions.executors.runpod:RunPodActions",
}


P = ParamSpec("P")
# a public step of the guard: a method taking the principal first, then the step's own arguments
Step: TypeAlias = Callable[Concatenate["GuardedAction", Principal, P], Coroutine[Any, Any, ActionResult]]


def _traced(step: str) -> Callable[[Step[P]], Step[P]]:
    """A span `action.<name>` around one public step of the guard (hulk_ops/observe/tracing.py lists its attributes).

    Parameters are not attributes (a RunPod request may carry secret values); the audit ids are added by
    `_noted` as the rows are written. Free when tracing is off."""

    def wrap(method: Step[P]) -> Step[P]:
        @functools.wraps(method)
        async def run(self: GuardedAction, principal: Principal, *args: P.args, **kwargs: P.kwargs) -> ActionResult:
            request = args[0] if args and isinstance(args[0], ActionRequest) else None
            request_id = args[0] if args and isinstance(args[0], str) else None  # approve, reject
            name = f"action.{request.action}" if request is not None else "action"
            with tracing.span(name, step=step, user=principal.name, roles=",".join(principal.roles),
                              via=principal.via, action=request.action if request else None,
                              target=request.target if request else None, request_id=request_id) as current:
                result = await method(self, principal, *args, **kwargs)
                if current.is_recording():
                    current.update_name(f"action.{result.action}")
                    tracing.annotate(current, action=result.action, target=result.target, object=result.object_name,
                                     outcome=result.status, request_id=result.request_id,
                                     idempotency_key=result.idempotency_key, approver=result.approver)
                    if result.status == "failed":
                        tracing.fail(current, result.error)
                return result

        return run

    return wrap


def build_guard(config: Config) -> GuardedAction:
    """The guard as the CLI and the dashboard use it: audit in PostgreSQL, outcomes on the timeline."""
    store = config.store
    return GuardedAction(config, timeline=Timeline(store.url, store.prefix, store.sentinel, store.cluster))


@dataclass(frozen=True)
class Context:
    principal: Principal  # who asked (for an approved request: the requester)
    request: ActionRequest
    target: TargetSettings
    request_id: str
    key: str
    approver: str | None = None


class GuardedAction:
    def __init__(self, config: Config, audit: AuditLog | None = None,
                 executors: Mapping[str, str | type[ActionExecutor]] | None = None,
                 timeline: Timeline | None = None) -> None:
        """`executors`: by action, the executor class or its "module:Class" (imported on first use)."""
        self._config = config
        self._audit = audit
        self._executor_types: dict[str, str | type[ActionExecutor]] = dict(executors or EXECUTORS)
        self._timeline = timeline
        self._approvals = Approvals(self, config.actions.approval_ttl_s)

    # -- what the UI may show ---------------------------------------------------------------
    def offered(self, principal: Principal, target: TargetSettings) -> list[str]:
        actions = [a for a, cls in REQUEST_TYPES.items() if target.kind in cls.kinds]
        return policy.offered(principal, target, self._config.actions, actions)

    # -- the flow ---------------------------------------------------------------------------
    @_traced("dry_run")
    async def dry_run(self, principal: Principal, request: ActionRequest) -> ActionResult:
        ctx = self._context(principal, request, None)
        request = ctx.request
        decision = policy.authorise(principal, request.action, ctx.target, self._config.actions)
        if decision.verdict == "deny":
            return await self._refuse(ctx, decision.reason)
        executor = self._executor(ctx)
        try:
            preview = await self._preview(executor, request)
        except (ActionRefused, ActionFailed) as exc:
            return await self._refuse(ctx, str(exc))
        if preview.refusal:
            return await self._refuse(ctx, preview.refusal, preview)
        result = self._result(ctx, "dry_run", preview.summary, preview)
        if decision.verdict == "approval":
            result.warnings.append(decision.reason)
        await self._record_soft(ctx, result, "dry_run")
        return result

    @_traced("submit")
    async def submit(self, principal: Principal, request: ActionRequest, confirm: str | None,
                     idempotency_key: str | None = None) -> ActionResult:
        ctx = self._context(principal, request, idempotency_key)
        request = ctx.request
        decision = policy.authorise(principal, request.action, ctx.target, self._config.actions)
        if decision.verdict == "deny":
            return await self._refuse(ctx, decision.reason)
        if confirm != request.object_name:
            return await self._refuse(ctx, f"confirmation {confirm!r} does not match: type {request.object_name!r} "
                                           "(the name of the object acted on) to confirm")
        if decision.verdict == "approval":
            return await self._approvals.queue(ctx, decision.reason)
        return await self._run(ctx)

    @_traced("approve")
    async def approve(self, principal: Principal, request_id: str) -> ActionResult:
        return await self._approvals.approve(principal, request_id)

    @_traced("reject")
    async def reject(self, principal: Principal, request_id: str, reason: str = "") -> ActionResult:
        return await self._approvals.reject(principal, request_id, reason)

    @_traced("refuse")
    async def refuse(self, principal: Principal, request: ActionRequest, reason: str) -> ActionResult:
        """Refuse before authorisation (no valid token, ...), audited like every refusal."""
        return await self._refuse(self._context(principal, request, None), reason)

    async def pending(self) -> list[PendingRequest]:
        """Requests waiting for approval, newest first (expired ones stay listed for a day)."""
        return await self._approvals.pending()

    async def history(self, flt: AuditFilter | None = None) -> list[AuditRecord]:
        return await self._store().records(flt)

    # -- steps ------------------------------------------------------------------------------
    async def _run(self, ctx: Context) -> ActionResult:
        try:
            async with self._store().claim(ctx.key) as claim:
                if claim.stored is not None:
                    return await self._replay(ctx, claim)
                return await self._claimed(ctx, claim)
        except KeyBusy as exc:
            return await self._refuse(ctx, str(exc))
        except AuditUnavailable as exc:
            result = self._result(ctx, "refused", f"refused: {exc}; nothing was executed", error=str(exc))
            await self._emit(ctx, result)
            return result

    async def _claimed(self, ctx: Context, claim: AuditClaim) -> ActionResult:
        executor = self._executor(ctx)
        try:
            preview = await self._preview(executor, ctx.request)
        except (ActionRefused, ActionFailed) as exc:
            return await self._refuse(ctx, str(exc), claim=claim)
        if preview.refusal:
            return await self._refuse(ctx, preview.refusal, preview, claim=claim)
        started = self._result(ctx, "succeeded", preview.summary, preview)
        audit_id = self._noted("started", await claim.start(self._record(ctx, "started", started),
                                                            ctx.request.fingerprint()))
        result = await self._execute(ctx, executor, preview, audit_id)
        try:
            self._noted(result.status, await claim.finish(self._record(ctx, result.status, result),
                                                          result.model_dump(mode="json")))
        except AuditUnavailable as exc:
            log.error("audit_outcome_lost", request_id=ctx.request_id, status=result.status, error=str(exc))
            result.warnings.append(f"the action ran but its outcome could not be recorded: {exc}")
        await self._emit(ctx, result)
        return result

    async def _execute(self, ctx: Context, executor: ActionExecutor, preview: Preview, audit_id: int) -> ActionResult:
        bound = self._config.actions.timeout_s * (self._config.actions.conflict_retries + 2)
        try:
            async with asyncio.timeout(bound):
                after = await executor.run(ctx.request, preview, _mint(audit_id, ctx.request.fingerprint()))
        except PermitError:
            raise
        except TimeoutError:
            error = f"timed out after {bound:.0f} s; the outcome is unknown: check {ctx.target.name}"
            return self._result(ctx, "failed", f"failed: {error}", preview, error=error)
        except (ActionRefused, ActionFailed) as exc:
            return self._result(ctx, "failed", f"failed: {exc}", preview, error=str(exc))
        except Exception as exc:  # an executor bug must still end in an audited outcome
            log.exception("executor_error", request_id=ctx.request_id, action=ctx.request.action)
            error = executor.redact(f"{type(exc).__name__}: {exc}")
            return self._result(ctx, "failed", f"failed: {error}", preview, error=error)
        return self._result(ctx, "succeeded", preview.summary, preview, after=after)

    async def _replay(self, ctx: Context, claim: AuditClaim) -> ActionResult:
        stored = claim.stored
        assert stored is not None
        if stored.fingerprint != ctx.request.fingerprint():
            return await self._refuse(ctx, f"idempotency key {ctx.key!r} was already used with other parameters "
                                           f"(request {stored.request_id})", claim=claim)
        if stored.state != "done" or stored.result is None:
            return await self._refuse(ctx, f"an earlier submit with key {ctx.key!r} (request {stored.request_id}) "
                                           "started but recorded no outcome: check the audit log and the target "
                                           "before retrying with a new key", claim=claim)
        earlier = ActionResult.model_validate(stored.result)
        result = earlier.model_copy(update={
            "status": "replayed", "request_id": ctx.request_id,
            "message": f"already done by request {stored.request_id} ({earlier.status}): {earlier.message}",
        })
        self._noted("replayed", await claim.record(self._record(ctx, "replayed", result)))
        return result

    async def _refuse(self, ctx: Context, reason: str, preview: Preview | None = None,
                      claim: AuditClaim | None = None) -> ActionResult:
        result = self._result(ctx, "refused", f"refused: {reason}", preview, error=reason)
        record = self._record(ctx, "refused", result)
        try:
            self._noted("refused", await (claim.record(record) if claim else self._store().append(record)))
        except AuditUnavailable as exc:
            result.warnings.append(f"this refusal could not be recorded: {exc}")
        await self._emit(ctx, result)
        return result

    # -- helpers ----------------------------------------------------------------------------
    def _store(self) -> AuditLog:
        if self._audit is None:
            self._audit = PostgresAuditLog(self._config.audit)  # raises AuditUnavailable without a URL
        return self._audit

    def _context(self, principal: Principal, request: ActionRequest, key: str | None) -> Context:
        request = _revalidated(request)
        try:
            target = self._config.target(request.target)
        except KeyError:
            raise BadRequest(f"unknown target {request.target!r}") from None
        if target.kind not in type(request).kinds:
            raise BadRequest(f"{request.action} acts on {'/'.join(type(request).kinds)} targets; "
                             f"{target.name} is {target.kind}")
        request_id = uuid.uuid4().hex
        return Context(principal, request, target, request_id, key or f"auto-{request_id}")

    def _executor(self, ctx: Context) -> ActionExecutor:
        ref = self._executor_types[ctx.request.action]
        if isinstance(ref, str):  # imported on first use: a config pays only for the clients it acts with
            module, _, name = ref.partition(":")
            ref = getattr(importlib.import_module(module), name)
        return ref(ctx.target, self._config.actions)

    async def _preview(self, executor: ActionExecutor, request: ActionRequest) -> Preview:
        try:
            async with asyncio.timeout(self._config.actions.timeout_s):
                return await executor.preview(request)
        except TimeoutError:
            raise ActionFailed(f"dry-run timed out after {self._config.actions.timeout_s:.0f} s") from None

    def _result(self, ctx: Context, status: str, message: str, preview: Preview | None = None,
                after: dict[str, JSON] | None = None, error: str | None = None) -> ActionResult:
        return ActionResult(status=status, request_id=ctx.request_id, action=ctx.request.action,
                            target=ctx.target.name, object_name=ctx.request.object_name, message=message,
                            preview=preview, after=after, error=error, idempotency_key=ctx.key, approver=ctx.approver)

    def _record(self, ctx: Context, outcome: str, result: ActionResult,
                expires_at: datetime | None = None) -> AuditRecord:
        preview = result.preview
        return AuditRecord(
            request_id=ctx.request_id, username=ctx.principal.name, roles=list(ctx.principal.roles),
            via=ctx.principal.via, action=ctx.request.action, target=ctx.target.name, object=ctx.request.object_name,
            params=ctx.request.params(), outcome=outcome, error=result.error, idempotency_key=ctx.key,
            approver=ctx.approver, dry_run=preview.model_dump(mode="json") if preview else None,
            before=preview.before if preview else None, after=result.after, expires_at=expires_at,
        )

    async def _record_soft(self, ctx: Context, result: ActionResult, outcome: str) -> None:
        """Audit a dry-run or an expiry; if the store is down the result says so (nothing was executed)."""
        try:
            self._noted(outcome, await self._store().append(self._record(ctx, outcome, result)))
        except AuditUnavailable as exc:
            result.warnings.append(f"not recorded in the audit log: {exc}")

    @staticmethod
    def _noted(outcome: str, row_id: int) -> int:
        """Put an audit row's id on the current action span: the 'started' row (the Permit's) and an approval
        under their own keys, the row holding the outcome as `audit_id`."""
        key = {"started": "audit_started_id", "approved": "audit_approved_id"}.get(outcome, "audit_id")
        tracing.note(**{key: row_id})
        return row_id

    async def _emit(self, ctx: Context, result: ActionResult) -> None:
        if self._timeline is not None:
            await self._timeline.emit(result, ctx.principal, ctx.target.kind)


def _revalidated(request: ActionRequest) -> ActionRequest:
    """The guard trusts no caller to have validated: a request built without validation (model_construct, a
    stored row edited by hand) is checked again here and refused as bad input before anything reads a backend."""
    if not isinstance(request, ActionRequest) or type(request) not in REQUEST_TYPES.values():
        raise BadRequest(f"not an action request: {type(request).__name__}")
    try:
        return type(request).model_validate(dict(request.__dict__))
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from None
