"""Ring moves (an admin's, and radar.yaml's seen at start-up) land in the store and the PostgreSQL audit log; the
EOL digest is queued once a day by the notifier's leader, through the real Redis outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis
import yaml

from hulk_ops.actions.audit import AuditFilter, PostgresAuditLog
from hulk_ops.collectors.notify import digest
from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.core.config import load_config
from hulk_ops.core.radar import load_radar
from hulk_ops.dashboard.rings import RingBook
from hulk_ops.dashboard.silence_writer import NotAllowed, Operator
from tests.seed import result, seed

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_actions"]

RADAR = {"components": [
    {"name": "Redis", "quadrant": "Data", "ring": "Adopt", "pinned": "7.2", "matches": {"kinds": ["redis"]},
     "lifecycle": [{"version": "7.0", "released": "2022-04-27", "eol": "2024-07-29"},
                   {"version": "7.2", "released": "2023-08-15", "eol": "2029-12-01"}]},
    {"name": "Kafka", "quadrant": "Messaging", "ring": "Hold"},
]}


def _config(write_config, tmp_path: Path, radar_yaml: dict, **sections):
    radar_file = tmp_path / "radar.yaml"
    radar_file.write_text(yaml.safe_dump(radar_yaml))
    path = write_config([{"name": "cache-a", "kind": "redis", "url": "redis://a"},
                         {"name": "cache-b", "kind": "redis", "url": "redis://b"}],
                        dashboard={"radar_file": str(radar_file)}, **sections)
    return load_config(path), radar_file


def test_an_admins_ring_move_is_audited_before_it_takes_effect(write_config, tmp_path, audit_schema) -> None:
    config, radar_file = _config(write_config, tmp_path, RADAR, audit=audit_schema.model_dump())
    client = redis.Redis.from_url(config.store.redis_url)
    book = RingBook(config, client)
    radar = load_radar(radar_file)
    with pytest.raises(NotAllowed):
        book.move(Operator("otto", "operator"), radar, "Kafka", "Assess", "retry it")
    with pytest.raises(ValueError, match="say why"):
        book.move(Operator("ada", "admin"), radar, "Kafka", "Assess", "  ")
    move = book.move(Operator("ada", "admin"), radar, "Kafka", "Assess", "tiered storage changes the cost", now=100.0)
    assert (move.previous, move.ring, move.by) == ("Hold", "Assess", "ada")
    assert book.in_force(radar) == {"Redis": "Adopt", "Kafka": "Assess"}
    rows = asyncio.run(PostgresAuditLog(audit_schema).records(AuditFilter(action="ring_move")))
    assert [(r.username, r.target, r.params, r.outcome, r.via) for r in rows] == [
        ("ada", "Kafka", {"from": "Hold", "to": "Assess", "why": "tiered storage changes the cost",
                          "source": "dashboard"}, "succeeded", "dashboard")]
    assert [m.ring for m in book.moves()] == ["Assess"]
    client.close()


def test_an_unreachable_audit_log_refuses_the_move(write_config, tmp_path, closed_port) -> None:
    config, radar_file = _config(write_config, tmp_path, RADAR,
                                 audit={"url": f"postgresql://nobody@127.0.0.1:{closed_port}/x", "timeout_s": 1})
    client = redis.Redis.from_url(config.store.redis_url)
    book = RingBook(config, client)
    radar = load_radar(radar_file)
    with pytest.raises(Exception, match="audit store unreachable"):
        book.move(Operator("ada", "admin"), radar, "Kafka", "Trial", "why not")
    assert book.in_force(radar)["Kafka"] == "Hold" and book.moves() == []
    client.close()


def test_radar_yaml_ring_changes_are_recorded_once_at_start_up(write_config, tmp_path, audit_schema) -> None:
    config, radar_file = _config(write_config, tmp_path, RADAR, audit=audit_schema.model_dump())
    client = redis.Redis.from_url(config.store.redis_url)
    book = RingBook(config, client)
    assert book.sync_file(load_radar(radar_file)) == []  # first sight: where the components start
    moved = {"components": [RADAR["components"][0], {**RADAR["components"][1], "ring": "Assess"}]}
    radar_file.write_text(yaml.safe_dump(moved))
    radar = load_radar(radar_file)
    (move,) = book.sync_file(radar)
    assert (move.component, move.previous, move.ring, move.by) == ("Kafka", "Hold", "Assess", "radar.yaml")
    assert book.sync_file(radar) == []  # a second dashboard starting on the same file records nothing
    assert RingBook(config, client).in_force(radar)["Kafka"] == "Assess"
    rows = asyncio.run(PostgresAuditLog(audit_schema).records(AuditFilter(action="ring_move")))
    assert [(r.username, r.params["from"], r.params["to"]) for r in rows] == [("radar.yaml", "Hold", "Assess")]
    client.close()


def test_the_eol_digest_is_queued_once_a_day_naming_the_targets(write_config, tmp_path) -> None:
    config, _ = _config(write_config, tmp_path, RADAR, radar={"digest": {"enabled": True, "hour_utc": 8}},
                        notify={"webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook", "format": "generic"}]})
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC).timestamp()
    seed(config, [result("cache-a", "redis", "up", now - 5, version="7.0.15"),
                  result("cache-b", "redis", "up", now - 5, version="7.2.4")])

    async def go() -> tuple[list, list, list]:
        store = NotifyStore(config.store.redis_url, config.store.prefix)
        try:
            early = await digest.maybe_send(config, store, datetime(2026, 12, 4, 7, 59, tzinfo=UTC).timestamp())
            first = await digest.maybe_send(config, store, now)
            again = await digest.maybe_send(config, store, now + 3600)
            return early, first, again
        finally:
            await store.close()

    early, first, again = asyncio.run(go())
    assert early == [] and again == []
    (message,) = first
    body = message["body"]
    assert body["severity"] == "info" and [f["targets"] for f in body["flags"]] == [["cache-a"]]
    client = redis.Redis.from_url(config.store.redis_url)
    queued = [orjson.loads(m) for m in client.lrange(NotifyKeys(config.store.prefix).queue("ops"), 0, -1)]
    assert [m["id"] for m in queued] == [message["id"]]
    client.close()


def test_the_digest_is_off_by_default(write_config, tmp_path) -> None:
    config, _ = _config(write_config, tmp_path, RADAR,
                        notify={"webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}]})
    store = NotifyStore(config.store.redis_url, config.store.prefix)
    try:
        assert asyncio.run(digest.maybe_send(config, store, datetime(2026, 12, 4, 12, tzinfo=UTC).timestamp())) == []
    finally:
        asyncio.run(store.close())
