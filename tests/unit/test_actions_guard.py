"""The guard's rules with in-memory fakes: the roles x actions matrix, fail-closed audit, permits."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from hulk_ops.actions import policy
from hulk_ops.actions.executors.base import ActionFailed
from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import REQUEST_TYPES, ActionRequest, BadRequest, Principal, PurgeStream, parse_request
from hulk_ops.actions.permit import Permit, PermitError, _mint
from hulk_ops.core.action_config import ActionsSettings
from hulk_ops.core.config import Config, TargetSettings
from tests.unit.fakes_actions import MemoryAuditLog, RecordingExecutor


class Nats(TargetSettings):
    kind: Literal["nats"] = "nats"


class Kube(TargetSettings):
    kind: Literal["kubernetes"] = "kubernetes"


class RunPod(TargetSettings):
    kind: Literal["runpod"] = "runpod"


KIND = {"nats": Nats, "kubernetes": Kube, "runpod": RunPod}
SAMPLE = {
    "purge_stream": {"stream": "ORDERS"},
    "scale": {"namespace": "shop", "deployment": "web", "replicas": 3},
    "launch_gpu": {"gpu_type": "NVIDIA A40", "count": 1, "image": "img:1", "max_hours": 2},
    "run_job": {"endpoint": "ep1", "input": {"prompt": "hi"}},
    "restart": {"namespace": "shop", "deployment": "web"},
    "endpoint_workers": {"endpoint": "ep1", "min_workers": 0, "max_workers": 4},
    "stop_pod": {"pod_id": "pod1"},
    "terminate_pod": {"pod_id": "pod1"},
}
ROLES: dict[str, tuple[str, ...]] = {"none": (), "viewer": ("viewer",), "operator": ("operator",),
                                     "admin": ("admin",)}
# (role, production, four_eyes) -> verdict; a read-only target is "deny" in every cell.
EXPECTED = {
    ("none", False, True): "deny", ("none", True, True): "deny",
    ("none", False, False): "deny", ("none", True, False): "deny",
    ("viewer", False, True): "deny", ("viewer", True, True): "deny",
    ("viewer", False, False): "deny", ("viewer", True, False): "deny",
    ("operator", False, True): "allow", ("operator", True, True): "approval",
    ("operator", False, False): "allow", ("operator", True, False): "deny",
    ("admin", False, True): "allow", ("admin", True, True): "approval",
    ("admin", False, False): "allow", ("admin", True, False): "allow",
}


def targets() -> list[TargetSettings]:
    out: list[TargetSettings] = []
    for kind, cls in KIND.items():
        out.append(cls(name=f"{kind}-dev", url="x://h:1"))
        out.append(cls(name=f"{kind}-prod", url="x://h:1", labels={"env": "production"}))
        out.append(cls(name=f"{kind}-ro", url="x://h:1", read_only=True))
    return out


def make_guard(four_eyes: bool = True) -> tuple[GuardedAction, MemoryAuditLog]:
    RecordingExecutor.reset()
    config = Config(targets=targets(), actions=ActionsSettings(four_eyes=four_eyes))
    audit = MemoryAuditLog()
    return GuardedAction(config, audit=audit, executors=dict.fromkeys(REQUEST_TYPES, RecordingExecutor)), audit


def request_for(action: str, where: str) -> ActionRequest:
    kind = REQUEST_TYPES[action].kinds[0]
    return parse_request({"action": action, "target": f"{kind}-{where}", **SAMPLE[action]})


CELLS = [(action, role, prod, four_eyes) for action in REQUEST_TYPES for role in ROLES
         for prod in (False, True) for four_eyes in (True, False)]


@pytest.mark.parametrize(("action", "role", "prod", "four_eyes"), CELLS)
def test_roles_x_actions_matrix(action: str, role: str, prod: bool, four_eyes: bool) -> None:
    guard, audit = make_guard(four_eyes)
    who = Principal(name="p", roles=ROLES[role])  # type: ignore[arg-type]
    request = request_for(action, "prod" if prod else "dev")
    expected = EXPECTED[(role, prod, four_eyes)]
    target = next(t for t in targets() if t.name == request.target)
    assert policy.authorise(who, action, target, ActionsSettings(four_eyes=four_eyes)).verdict == expected

    result = asyncio.run(guard.submit(who, request, confirm=request.object_name))
    status = {"allow": "succeeded", "approval": "pending_approval", "deny": "refused"}[expected]
    assert result.status == status, result.message
    assert RecordingExecutor.executed == ([request] if expected == "allow" else [])
    assert (action in guard.offered(who, target)) == (expected != "deny")
    assert audit.outcomes()[-1] == {"allow": "succeeded", "approval": "pending_approval", "deny": "refused"}[expected]

    read_only = request_for(action, "ro")
    refused = asyncio.run(guard.submit(who, read_only, confirm=read_only.object_name))
    assert refused.status == "refused"
    assert RecordingExecutor.executed == ([request] if expected == "allow" else [])


@pytest.mark.parametrize(("role", "same_person", "expected"), [
    ("viewer", False, "deny"), ("operator", False, "deny"), ("admin", False, "allow"), ("admin", True, "deny")])
def test_approval_matrix(role: str, same_person: bool, expected: str) -> None:
    guard, _audit = make_guard()
    requester = Principal(name="ada" if same_person else "otto", roles=("admin",) if same_person else ("operator",))
    request = request_for("scale", "prod")
    waiting = asyncio.run(guard.submit(requester, request, confirm=request.object_name))
    assert waiting.status == "pending_approval"
    approver = Principal(name="ada", roles=(role,))  # type: ignore[arg-type]
    result = asyncio.run(guard.approve(approver, waiting.request_id))
    assert result.status == ("succeeded" if expected == "allow" else "refused"), result.message
    assert RecordingExecutor.executed == ([request] if expected == "allow" else [])
    if expected == "allow":
        assert result.approver == "ada"


def test_audit_down_means_nothing_executes_and_refusals_say_so() -> None:
    guard, audit = make_guard()
    audit.down = True
    request = request_for("purge_stream", "dev")
    result = asyncio.run(guard.submit(Principal(name="o", roles=("operator",)), request, confirm="ORDERS"))
    assert result.status == "refused" and "nothing was executed" in result.message
    assert RecordingExecutor.executed == []
    denied = asyncio.run(guard.submit(Principal(name="v", roles=("viewer",)), request, confirm="ORDERS"))
    assert denied.status == "refused" and "could not be recorded" in denied.warnings[0]


def test_the_started_row_is_written_before_anything_runs() -> None:
    guard, audit = make_guard()
    audit.fail_on = {"started"}
    request = request_for("stop_pod", "dev")
    result = asyncio.run(guard.submit(Principal(name="o", roles=("operator",)), request, confirm="pod1"))
    assert result.status == "refused"
    assert RecordingExecutor.executed == []


def test_an_unrecorded_outcome_is_reported_and_blocks_the_key() -> None:
    guard, audit = make_guard()
    audit.fail_on = {"succeeded"}
    who = Principal(name="o", roles=("operator",))
    request = request_for("stop_pod", "dev")
    result = asyncio.run(guard.submit(who, request, confirm="pod1", idempotency_key="k1"))
    assert result.status == "succeeded"
    assert "could not be recorded" in result.warnings[0]
    audit.fail_on = set()
    again = asyncio.run(guard.submit(who, request, confirm="pod1", idempotency_key="k1"))
    assert again.status == "refused" and "recorded no outcome" in again.error
    assert len(RecordingExecutor.executed) == 1


def test_executor_failure_is_an_audited_failed_outcome() -> None:
    guard, audit = make_guard()
    RecordingExecutor.fail_with = ActionFailed("backend said no")
    request = request_for("stop_pod", "dev")
    result = asyncio.run(guard.submit(Principal(name="o", roles=("operator",)), request, confirm="pod1"))
    assert result.status == "failed" and result.error == "backend said no"
    assert audit.outcomes() == ["started", "failed"]


def test_preview_refusal_stops_before_the_audit_start() -> None:
    guard, audit = make_guard()
    RecordingExecutor.refusal = "over budget: 120.00 USD > cap 50.00 USD"
    request = request_for("launch_gpu", "dev")
    result = asyncio.run(guard.submit(Principal(name="o", roles=("operator",)), request, confirm="runpod-dev"))
    assert result.status == "refused" and result.error.startswith("over budget")
    assert audit.outcomes() == ["refused"]
    assert RecordingExecutor.executed == []


def test_concurrent_submits_with_one_key_execute_once() -> None:
    guard, _audit = make_guard()
    who = Principal(name="o", roles=("operator",))
    request = request_for("scale", "dev")

    async def burst() -> list[str]:
        results = await asyncio.gather(*[guard.submit(who, request, "web", idempotency_key="k") for _ in range(10)])
        return sorted(r.status for r in results)

    assert asyncio.run(burst()) == ["replayed"] * 9 + ["succeeded"]
    assert len(RecordingExecutor.executed) == 1
    other = request_for("scale", "dev").model_copy(update={"replicas": 4})
    refused = asyncio.run(guard.submit(who, other, "web", idempotency_key="k"))
    assert refused.status == "refused" and "other parameters" in refused.error


def test_unknown_target_and_wrong_kind_are_bad_input() -> None:
    guard, audit = make_guard()
    who = Principal(name="o", roles=("operator",))
    with pytest.raises(BadRequest, match="unknown target 'nope'"):
        asyncio.run(guard.dry_run(who, PurgeStream(target="nope", stream="S")))
    with pytest.raises(BadRequest, match="purge_stream acts on nats targets; kubernetes-dev is kubernetes"):
        asyncio.run(guard.dry_run(who, PurgeStream(target="kubernetes-dev", stream="S")))
    assert audit.rows == []


def test_executors_refuse_without_the_guards_permit() -> None:
    executor = RecordingExecutor(Nats(name="n", url="x://h:1"), ActionsSettings())
    request = request_for("purge_stream", "dev")
    preview = asyncio.run(executor.preview(request))
    with pytest.raises(PermitError):
        Permit(1, request.fingerprint(), seal=object())
    with pytest.raises(PermitError, match="another request"):
        asyncio.run(executor.run(request, preview, _mint(1, "other-fingerprint")))
    permit = _mint(2, request.fingerprint())
    asyncio.run(executor.run(request, preview, permit))
    with pytest.raises(PermitError, match="already used"):
        asyncio.run(executor.run(request, preview, permit))


def test_requests_with_secret_values_cannot_wait_for_approval() -> None:
    guard, audit = make_guard()
    who = Principal(name="o", roles=("operator",))
    secret = request_for("launch_gpu", "prod").model_copy(update={"env": {}})
    secret = parse_request({**secret.params(redact=False), "env": {"HF_TOKEN": "hf_value"}})
    result = asyncio.run(guard.submit(who, secret, confirm="runpod-prod"))
    assert result.status == "refused" and "RUNPOD_SECRET" in result.error
    assert "hf_value" not in repr(audit.rows)
    reference = parse_request({**secret.params(redact=False), "env": {"HF_TOKEN": "{{ RUNPOD_SECRET_hf }}"}})
    assert asyncio.run(guard.submit(who, reference, confirm="runpod-prod")).status == "pending_approval"
