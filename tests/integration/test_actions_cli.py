"""`hulk-ops action|audit|user` against real NATS and PostgreSQL: tokens, exit codes, the audit trail."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import load_config
from tests.fixtures_actions import add_user

pytest_plugins = ["tests.fixtures_actions"]


@pytest.fixture
def cli_config(write_config, nats_server, audit_schema):
    return write_config(
        [
            {"name": "nats-dev", "kind": "nats", "url": nats_server.url},
            {"name": "nats-prod", "kind": "nats", "url": nats_server.url, "labels": {"env": "production"}},
        ],
        audit=audit_schema.model_dump(),
    )


def test_user_add_keeps_the_file_and_stores_only_a_hash(run, cli_config) -> None:
    cli_config.write_text("# ops config, hand written\n" + cli_config.read_text())
    token = add_user(run, cli_config, "otto", "operator")
    text = cli_config.read_text()
    assert text.startswith("# ops config, hand written\n")
    assert token.startswith("hko_") and token not in text
    user = load_config(cli_config).auth.user("otto")
    assert user is not None and user.role == "operator" and user.token_hash.startswith("$argon2id$")
    code, _out, err = run("user", "add", "otto", "--role", "admin", "--config", str(cli_config))
    assert code == 2 and "already exists" in err


def test_purge_from_the_terminal(run, cli_config, stream, store_redis_url, store_prefix) -> None:
    asyncio.run(stream.create({"worker": None}))
    asyncio.run(stream.publish(11))
    token = add_user(run, cli_config, "otto", "operator")
    base = ["action", "purge-stream", "--config", str(cli_config), "--target", "nats-dev", "--stream", stream.name]

    code, out, _ = run(*base, "--dry-run", token=token)
    assert code == 0
    assert "purge 11 of 11 message(s)" in out and f"--confirm {stream.name}" in out

    code, out, _ = run(*base, "--confirm", "wrong-name", token=token)
    assert code == 1 and "does not match" in out
    assert asyncio.run(stream.state())[0] == 11

    code, out, _ = run(*base, "--confirm", stream.name, "--json", token=token)
    result = orjson.loads(out)
    assert code == 0 and result["status"] == "succeeded"
    assert result["after"]["purged"] == 11 == result["preview"]["expected"]["purged_messages"]
    messages, _size, pending = asyncio.run(stream.state())
    assert (messages, pending["worker"]) == (0, 0)

    code, out, _ = run("audit", "list", "--config", str(cli_config), "--json")
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["outcome"] for r in rows] == ["succeeded", "started", "refused", "dry_run"]
    assert rows[0]["after"]["purged"] == 11 and rows[0]["username"] == "otto"

    # the outcomes are on the incident timeline too (the store's event stream)
    store = redis.Redis.from_url(store_redis_url, decode_responses=True)
    events = [fields for _id, fields in store.xrange(Keys(store_prefix).events)]
    store.close()
    assert [(e["source"], e["action"], e["outcome"], e["user"], e["object"]) for e in events] == [
        ("action", "purge_stream", "refused", "otto", stream.name),
        ("action", "purge_stream", "succeeded", "otto", stream.name)]


def test_authentication_is_by_token_only(run, cli_config, stream) -> None:
    asyncio.run(stream.create())
    asyncio.run(stream.publish(4))
    viewer = add_user(run, cli_config, "vera", "viewer")
    base = ["action", "purge-stream", "--config", str(cli_config), "--target", "nats-dev", "--stream", stream.name,
            "--confirm", stream.name]
    assert run(*base)[0] == 1  # no token
    assert run(*base, token="hko_0123456789abcdef_" + "x" * 43)[0] == 1  # unknown token
    assert run(*base, token=viewer[:-2] + "zz")[0] == 1  # tampered token
    code, out, _ = run(*base, token=viewer)
    assert code == 1 and "viewer" in out
    assert asyncio.run(stream.state())[0] == 4
    _code, out, _ = run("audit", "list", "--config", str(cli_config), "--json")
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [(r["username"], r["outcome"]) for r in rows] == [
        ("vera", "refused"), *[("(unauthenticated)", "refused")] * 3]


def test_bad_input_exits_2(run, cli_config) -> None:
    token = add_user(run, cli_config, "otto", "operator")
    cfg = ["--config", str(cli_config)]
    assert run("action", "purge-stream", *cfg, "--target", "nats-dev", "--stream", "a.b", "--dry-run",
               token=token)[0] == 2
    assert run("action", "purge-stream", *cfg, "--target", "nowhere", "--stream", "S", "--dry-run",
               token=token)[0] == 2
    assert run("action", "purge-stream", *cfg, "--target", "nats-dev", "--stream", "S", "--keep", "0",
               "--dry-run", token=token)[0] == 2
    assert run("action", "scale", *cfg, "--target", "nats-dev", "--namespace", "a", "--deployment", "b",
               "--replicas", "1", "--dry-run", token=token)[0] == 2


def test_production_waits_then_an_admin_approves(run, cli_config, stream) -> None:
    asyncio.run(stream.create())
    asyncio.run(stream.publish(6))
    operator = add_user(run, cli_config, "otto", "operator")
    admin = add_user(run, cli_config, "ada", "admin")
    code, out, _ = run("action", "purge-stream", "--config", str(cli_config), "--target", "nats-prod",
                       "--stream", stream.name, "--confirm", stream.name, "--json", token=operator)
    waiting = orjson.loads(out)
    assert code == 3 and waiting["status"] == "pending_approval"
    code, out, _ = run("action", "pending", "--config", str(cli_config), "--json")
    assert [orjson.loads(line)["request_id"] for line in out.splitlines()] == [waiting["request_id"]]
    assert run("action", "approve", waiting["request_id"], "--config", str(cli_config), token=operator)[0] == 1
    code, out, _ = run("action", "approve", waiting["request_id"], "--config", str(cli_config), token=admin)
    assert code == 0 and "approved by ada" in out
    assert asyncio.run(stream.state())[0] == 0
