"""A span per guarded action step, carrying the audit ids of the rows it wrote, recorded by the SDK's in-memory
exporter around the guard with in-memory fakes (audit log, executors)."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hulk_ops.actions.executors.base import ActionFailed
from hulk_ops.actions.model import Principal, parse_request
from hulk_ops.observe import tracing
from tests.unit.fakes_actions import RecordingExecutor
from tests.unit.test_actions_guard import make_guard, request_for

OPERATOR = Principal(name="otto", roles=("operator",), via="dashboard")
ADMIN = Principal(name="ada", roles=("admin",), via="cli")
VIEWER = Principal(name="vera", roles=("viewer",), via="dashboard")
CANARY = "hf_canary_secret_value_9f3a"

pytest_plugins = ["tests.fixtures_observe"]  # spans: the SDK's in-memory exporter around hulk-ops' tracer


def only(exporter: InMemorySpanExporter, name: str):
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def row_id(audit, request_id: str, outcome: str) -> int:
    (row,) = [r for r in audit.rows if r.request_id == request_id and r.outcome == outcome]
    return row.id


def test_an_executed_action_is_one_child_span_with_both_audit_ids(spans) -> None:
    guard, audit = make_guard()
    request = request_for("purge_stream", "dev")

    async def go():
        with tracing.span("dashboard.page"):
            return await guard.submit(OPERATOR, request, confirm=request.object_name, idempotency_key="key-17")

    result = asyncio.run(go())
    assert result.status == "succeeded"
    span, page = only(spans, "action.purge_stream"), only(spans, "dashboard.page")
    assert span.parent.span_id == page.context.span_id
    assert dict(span.attributes) == {
        "hulk.step": "submit", "hulk.user": "otto", "hulk.roles": "operator", "hulk.via": "dashboard",
        "hulk.action": "purge_stream", "hulk.target": "nats-dev", "hulk.object": request.object_name,
        "hulk.outcome": "succeeded", "hulk.request_id": result.request_id, "hulk.idempotency_key": "key-17",
        "hulk.audit_started_id": row_id(audit, result.request_id, "started"),
        "hulk.audit_id": row_id(audit, result.request_id, "succeeded"),
    }
    assert span.status.status_code.name == "UNSET"


def test_refusals_dry_runs_and_failures_carry_their_row(spans) -> None:
    guard, audit = make_guard()
    request = request_for("scale", "dev")
    refused = asyncio.run(guard.submit(VIEWER, request, confirm=request.object_name))
    dry = asyncio.run(guard.dry_run(OPERATOR, request))
    RecordingExecutor.fail_with = ActionFailed("the API said no")
    failed = asyncio.run(guard.submit(OPERATOR, request, confirm=request.object_name))
    first, second, third = spans.get_finished_spans()
    assert {s.name for s in (first, second, third)} == {"action.scale"}
    assert (first.attributes["hulk.outcome"], first.attributes["hulk.audit_id"]) == (
        "refused", row_id(audit, refused.request_id, "refused"))
    assert (second.attributes["hulk.step"], second.attributes["hulk.audit_id"]) == (
        "dry_run", row_id(audit, dry.request_id, "dry_run"))
    assert third.attributes["hulk.outcome"] == "failed"
    assert third.attributes["hulk.audit_id"] == row_id(audit, failed.request_id, "failed")
    assert third.status.status_code.name == "ERROR" and third.status.description == "the API said no"


def test_approval_spans_name_the_action_and_the_approval_row(spans) -> None:
    guard, audit = make_guard()
    request = request_for("scale", "prod")
    waiting = asyncio.run(guard.submit(OPERATOR, request, confirm=request.object_name))
    assert waiting.status == "pending_approval"
    done = asyncio.run(guard.approve(ADMIN, waiting.request_id))
    assert done.status == "succeeded", done.message
    queued, approved = spans.get_finished_spans()
    assert queued.attributes["hulk.audit_id"] == row_id(audit, waiting.request_id, "pending_approval")
    assert approved.name == "action.scale"
    attrs = dict(approved.attributes)
    assert attrs["hulk.step"] == "approve" and attrs["hulk.user"] == "ada" and attrs["hulk.approver"] == "ada"
    assert attrs["hulk.request_id"] == waiting.request_id
    assert attrs["hulk.audit_approved_id"] == row_id(audit, waiting.request_id, "approved")
    assert attrs["hulk.audit_started_id"] == row_id(audit, waiting.request_id, "started")
    assert attrs["hulk.audit_id"] == row_id(audit, waiting.request_id, "succeeded")


def test_no_secret_reaches_a_span(spans) -> None:
    guard, _audit = make_guard()
    request = parse_request({"action": "launch_gpu", "target": "runpod-dev", "gpu_type": "NVIDIA A40",
                             "image": "img:1", "max_hours": 2, "env": {"HF_TOKEN": CANARY, "MODE": "fast"}})
    asyncio.run(guard.dry_run(OPERATOR, request))
    result = asyncio.run(guard.submit(OPERATOR, request, confirm=request.object_name))
    assert result.status == "succeeded"
    finished = spans.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        texts = [str(v) for v in span.attributes.values()] + [span.name, str(span.status.description)]
        texts += [str(v) for event in span.events for v in event.attributes.values()]
        assert not any(CANARY in text for text in texts), span.attributes

