"""The guard end to end on real servers: NATS JetStream purges audited in real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from hulk_ops.actions import approvals as approvals_mod
from hulk_ops.actions.audit import PostgresAuditLog
from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import Principal, PurgeStream
from hulk_ops.core.action_config import AuditSettings
from hulk_ops.core.config import load_config
from hulk_ops.core.model import utcnow

pytest_plugins = ["tests.fixtures_actions"]
VIEWER = Principal(name="vera", roles=("viewer",), via="test")
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
ADMIN = Principal(name="ada", roles=("admin",), via="test")
ADMIN2 = Principal(name="alan", roles=("admin",), via="test")


@pytest.fixture
def make_guard(write_config, nats_server, audit_schema):
    def make(audit: AuditSettings | None = None, **actions) -> GuardedAction:
        settings = audit or audit_schema
        path = write_config(
            [
                {"name": "nats-dev", "kind": "nats", "url": nats_server.url},
                {"name": "nats-prod", "kind": "nats", "url": nats_server.url, "labels": {"env": "production"}},
                {"name": "nats-frozen", "kind": "nats", "url": nats_server.url, "read_only": True},
            ],
            audit=settings.model_dump(),
            actions=actions,
        )
        return GuardedAction(load_config(path))
    return make


async def rows(guard: GuardedAction) -> list:
    return list(reversed(await guard.history()))


async def test_purge_whole_stream_dry_run_then_execute(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create({"worker": None})
    await stream.publish(37)
    messages, size, pending = await stream.state()
    assert (messages, pending["worker"]) == (37, 37)
    request = PurgeStream(target="nats-dev", stream=stream.name)

    dry = await guard.dry_run(OPERATOR, request)
    assert dry.status == "dry_run"
    assert dry.preview.expected["purged_messages"] == 37
    assert dry.preview.expected["purged_bytes"] == size
    assert any("worker loses up to 37" in line for line in dry.preview.blast_radius)
    assert (await stream.state())[0] == 37  # a dry-run changes nothing

    done = await guard.submit(OPERATOR, request, confirm=stream.name, idempotency_key="k-whole")
    assert done.status == "succeeded", done.message
    assert done.after["purged"] == 37 == done.preview.expected["purged_messages"]
    assert done.after["matches_preview"] is True
    messages, _size, pending = await stream.state()
    assert (messages, pending["worker"]) == (0, 0)

    audit = await rows(guard)
    assert [r.outcome for r in audit] == ["dry_run", "started", "succeeded"]
    outcome = audit[-1]
    assert outcome.after["purged"] == 37
    assert outcome.dry_run["expected"]["purged_messages"] == 37
    assert outcome.before["messages"] == 37
    assert (outcome.username, outcome.roles, outcome.action, outcome.target, outcome.object) == (
        "otto", ["operator"], "purge_stream", "nats-dev", stream.name)
    assert outcome.params == {"action": "purge_stream", "stream": stream.name, "target": "nats-dev"}
    assert outcome.idempotency_key == "k-whole"
    assert audit[1].request_id == audit[2].request_id


async def test_purge_by_subject_keeping_the_newest(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create({"eu": "eu", "us": "us"})
    await stream.publish(20, subject="eu")
    await stream.publish(10, subject="us")
    request = PurgeStream(target="nats-dev", stream=stream.name, subject=f"{stream.name}.eu", keep=5)

    dry = await guard.dry_run(OPERATOR, request)
    assert dry.preview.expected["purged_messages"] == 15
    assert dry.preview.expected["bytes_estimated"] is True
    assert not any(line.startswith("consumer us ") for line in dry.preview.blast_radius)

    done = await guard.submit(OPERATOR, request, confirm=stream.name)
    assert done.status == "succeeded", done.message
    assert done.after["purged"] == 15
    messages, _size, pending = await stream.state()
    assert messages == 15
    assert pending == {"eu": 5, "us": 10}


async def test_wrong_confirmation_is_refused_and_audited(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create()
    await stream.publish(5)
    result = await guard.submit(OPERATOR, PurgeStream(target="nats-dev", stream=stream.name), confirm="yes")
    assert result.status == "refused"
    assert "does not match" in result.message
    assert (await stream.state())[0] == 5
    assert [r.outcome for r in await rows(guard)] == ["refused"]


async def test_viewer_and_read_only_target_are_refused(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create()
    await stream.publish(5)
    viewer = await guard.submit(VIEWER, PurgeStream(target="nats-dev", stream=stream.name), confirm=stream.name)
    frozen = await guard.submit(ADMIN, PurgeStream(target="nats-frozen", stream=stream.name), confirm=stream.name)
    assert viewer.status == frozen.status == "refused"
    assert "viewer" in viewer.error
    assert "read-only" in frozen.error
    assert (await stream.state())[0] == 5
    audit = await rows(guard)
    assert [(r.username, r.outcome) for r in audit] == [("vera", "refused"), ("ada", "refused")]


async def test_unknown_stream_is_a_clear_refusal(make_guard) -> None:
    result = await make_guard().dry_run(OPERATOR, PurgeStream(target="nats-dev", stream="NO_SUCH_STREAM_X1"))
    assert result.status == "refused"
    assert result.error == "stream 'NO_SUCH_STREAM_X1' not found on nats-dev"


async def test_production_waits_for_another_admin(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create()
    await stream.publish(12)
    request = PurgeStream(target="nats-prod", stream=stream.name)

    waiting = await guard.submit(OPERATOR, request, confirm=stream.name)
    assert waiting.status == "pending_approval"
    assert (await stream.state())[0] == 12
    pending = await guard.pending()
    assert [(p.record.request_id, p.record.username, p.expired) for p in pending] == [
        (waiting.request_id, "otto", False)]

    assert (await guard.approve(OPERATOR, waiting.request_id)).status == "refused"  # not an admin
    own = await guard.submit(ADMIN, request, confirm=stream.name)
    assert own.status == "pending_approval"  # admins wait too on production
    refused = await guard.approve(ADMIN, own.request_id)
    assert refused.status == "refused" and "four-eyes" in refused.error

    approved = await guard.approve(ADMIN2, waiting.request_id)
    assert approved.status == "succeeded", approved.message
    assert approved.after["purged"] == 12
    assert (await stream.state())[0] == 0
    audit = [r for r in await rows(guard) if r.request_id == waiting.request_id]
    assert [r.outcome for r in audit] == ["pending_approval", "refused", "approved", "started", "succeeded"]
    assert audit[1].username == "otto" and "not an admin" in audit[1].error
    assert audit[-1].approver == "alan" and audit[-1].username == "otto"
    again = await guard.approve(ADMIN2, waiting.request_id)
    assert again.status == "refused" and "already approved" in again.error
    assert [p.record.request_id for p in await guard.pending()] == [own.request_id]


async def test_waiting_request_expires(make_guard, stream, monkeypatch) -> None:
    guard = make_guard(approval_ttl_s=60)
    await stream.create()
    await stream.publish(3)
    waiting = await guard.submit(OPERATOR, PurgeStream(target="nats-prod", stream=stream.name), confirm=stream.name)
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(approvals_mod, "utcnow", lambda: later)
    assert [p.expired for p in await guard.pending()] == [True]
    much_later = later + timedelta(days=1, seconds=1)
    monkeypatch.setattr(approvals_mod, "utcnow", lambda: much_later)
    assert await guard.pending() == []  # listed as expired for a day, then gone
    monkeypatch.setattr(approvals_mod, "utcnow", lambda: later)
    result = await guard.approve(ADMIN, waiting.request_id)
    assert result.status == "refused" and result.error == "expired"
    assert (await stream.state())[0] == 3
    assert await guard.pending() == []


async def test_ten_concurrent_submits_with_one_key_execute_once(make_guard, stream) -> None:
    guard = make_guard()
    await stream.create()
    await stream.publish(25)
    request = PurgeStream(target="nats-dev", stream=stream.name)
    results = await asyncio.gather(*[
        make_guard().submit(OPERATOR, request, confirm=stream.name, idempotency_key="same-key") for _ in range(10)
    ])
    statuses = sorted(r.status for r in results)
    assert statuses == ["replayed"] * 9 + ["succeeded"]
    assert {r.after["purged"] for r in results} == {25}  # the rest got the stored result
    audit = await rows(guard)
    assert sum(r.outcome == "started" for r in audit) == 1
    assert sum(r.outcome == "replayed" for r in audit) == 9

    other = await guard.submit(OPERATOR, PurgeStream(target="nats-dev", stream=stream.name, keep=1),
                               confirm=stream.name, idempotency_key="same-key")
    assert other.status == "refused"
    assert "already used with other parameters" in other.error


async def test_audit_store_down_means_nothing_executes(make_guard, stream, closed_port) -> None:
    down = AuditSettings(url=f"postgresql://postgres@127.0.0.1:{closed_port}/test", timeout_s=2)
    guard = make_guard(audit=down)
    await stream.create()
    await stream.publish(9)
    result = await guard.submit(OPERATOR, PurgeStream(target="nats-dev", stream=stream.name), confirm=stream.name)
    assert result.status == "refused"
    assert "audit store unreachable" in result.message and "nothing was executed" in result.message
    assert (await stream.state())[0] == 9


async def test_audit_log_is_append_only_in_the_database(audit_log: PostgresAuditLog, audit_schema) -> None:
    from hulk_ops.actions.audit import AuditRecord

    await audit_log.append(AuditRecord(request_id="r1", username="u", action="purge_stream", target="t",
                                       object="o", params={}, outcome="refused"))
    async with await psycopg.AsyncConnection.connect(audit_schema.url, autocommit=True) as conn:
        table = sql.Identifier(audit_schema.schema_name, "audit_log")
        for statement in (sql.SQL("UPDATE {} SET outcome = 'succeeded'"), sql.SQL("DELETE FROM {}"),
                          sql.SQL("TRUNCATE {}")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                await conn.execute(statement.format(table))
    assert [r.outcome for r in await audit_log.records()] == ["refused"]
