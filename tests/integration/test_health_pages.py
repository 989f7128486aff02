"""The hulk-ops health and Silences pages rendered by AppTest from a store written by the real adapters."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from streamlit.testing.v1 import AppTest

from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.dashboard.silence_writer import NotAllowed, Operator, SilenceWriter
from hulk_ops.entrypoints.bootstrap import build_store
from tests.seed import result, seed

pytest_plugins = ["tests.fixtures_observe"]
APP = str(Path(__file__).resolve().parents[2] / "hulk_ops" / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def open_page(config_path, monkeypatch, url_path: str, principal=None) -> AppTest:
    monkeypatch.setenv("HULK_OPS_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=60)
    if principal is not None:
        at.session_state["principal"] = principal
    at.run()
    if url_path != "overview":  # the default page is what the first run shows
        # st.navigation pages are callables: select ours by its url_path (what a browser at /<url_path> gets)
        at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == url_path)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [i.value for i in at.info]
    return "\n".join(parts)


def seed_health(config) -> None:
    now = time.time()

    async def go() -> None:
        store = build_store(config)
        notify = NotifyStore(config.store.redis_url, config.store.prefix)
        try:
            await store.write_heartbeat("c-alive", {
                "heartbeat_at": now - 2, "targets": 3, "probes_per_s": 12.5, "cycle_lag_s": 0.031,
                "max_lag_s": 0.2, "store_write_ms_p50": 1.25, "store_write_ms_max": 9.5, "store_ok": True,
                "buffered": 4, "dropped": 7, "breakers_open": 1, "notify_leader": True, "stopped": False})
            await store.write_heartbeat("c-gone", {
                "heartbeat_at": now - 120, "targets": 3, "probes_per_s": 99.0, "cycle_lag_s": 5.0, "buffered": 1000,
                "dropped": 1000, "store_ok": True, "stopped": False})
            await store.write_breakers({"db": {"state": "opened", "failures": 3, "opened_at": now - 5,
                                               "retry_at": now + 25}, "cache": {"state": "closed", "failures": 0}})
            await notify.log({"at": now - 3, "webhook": "oncall", "message_id": "db-1:open:1", "incident_id": "db-1",
                              "event": "open", "root": "db", "summary": "DOWN: db is down", "outcome": "retry",
                              "attempt": 1, "status_code": 503, "error": "HTTP 503 Service Unavailable"})
            await notify.log({"at": now - 1, "webhook": "oncall", "message_id": "db-1:open:1", "incident_id": "db-1",
                              "event": "open", "root": "db", "summary": "DOWN: db is down", "outcome": "delivered",
                              "attempt": 2, "status_code": 200, "error": None})
        finally:
            await store.close()
            await notify.close()

    asyncio.run(go())


def test_health_page_shows_replicas_lag_rates_breakers_silences_and_deliveries(write_config, monkeypatch, spans):
    now = time.time()
    path = write_config(
        [{"name": "cache", "kind": "redis", "url": "redis://h:1"}, {"name": "db", "kind": "postgres",
                                                                     "url": "postgresql://h:1/x"}],
        notify={"webhooks": [{"name": "oncall", "url": "http://127.0.0.1:9/hook"}]},
        silences=[{"targets": ["db"], "start": "2020-01-01T00:00:00Z",
                   "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)), "author": "ana",
                   "reason": "vacuum full"}])
    config = load_config(path)
    seed_health(config)
    at = open_page(path, monkeypatch, "health")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Collectors alive": "1", "Probes per second": "12.5", "Cycle lag": "31 ms",
                       "Store write p50": "1.2 ms", "Buffered results": "4", "Dropped results": "7"}
    replicas, breakers, deliveries = (d.value for d in at.dataframe)
    assert dict(zip(replicas["replica"], replicas["state"], strict=True)) == {"c-alive": "alive", "c-gone": "gone"}
    assert list(breakers["target"]) == ["db"] and list(breakers["state"]) == ["opened"]
    assert list(deliveries["outcome"]) == ["delivered", "retry"]  # newest first
    assert list(deliveries["code"]) == [200, 503]
    body = texts(at)
    assert ":material/notifications_off: **db**" in body and "vacuum full" in body
    assert "Waiting in the outbox — oncall: 0" in body
    pages = [s for s in spans.get_finished_spans() if s.name == "dashboard.page"]
    assert [s.attributes["hulk.page"] for s in pages] == ["overview", "health"]


def test_health_page_without_any_collector_says_how_to_start_one(write_config, monkeypatch) -> None:
    path = write_config([{"name": "cache", "kind": "redis", "url": "redis://h:1"}])
    body = texts(open_page(path, monkeypatch, "health"))
    assert "No collector has ever written a heartbeat" in body
    assert "No webhook is configured" in body


def test_only_operators_get_the_silence_form(write_config, monkeypatch) -> None:
    path = write_config([{"name": "db", "kind": "postgres", "url": "postgresql://h:1/x"}])
    for who in (None, SimpleNamespace(name="vi", role="viewer")):
        at = open_page(path, monkeypatch, "silences", principal=who)
        assert "needs a signed-in operator or admin" in texts(at)
        assert not at.button  # no form, no submit


def test_operator_silences_a_target_which_keeps_its_true_state_with_a_badge(write_config, monkeypatch,
                                                                           store_redis_url) -> None:
    path = write_config([{"name": "db", "kind": "postgres", "url": "postgresql://h:1/x", "interval_s": 10},
                         {"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 10}])
    config = load_config(path)
    now = time.time()
    seed(config, [result("db", "postgres", "down", now - 1, error="connection refused (h:1)"),
                  result("cache", "redis", "up", now - 1)])
    at = open_page(path, monkeypatch, "silences", principal=SimpleNamespace(name="bo", role="operator"))
    at.multiselect(key="silence_targets").set_value(["db"])
    at.number_input(key="silence_lasts").set_value(30)
    at.text_area(key="silence_reason").input("failover drill, OPS-812")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Silenced db until" in s.value for s in at.success)
    (silence,) = ReadModel(config).silences()
    assert (silence.targets, silence.author, silence.reason, silence.source) == (
        ("db",), "bo", "failover drill, OPS-812", "dashboard")
    assert abs(silence.end - silence.start - 1800) < 1 and abs(silence.start - time.time()) < 60

    overview = open_page(path, monkeypatch, "overview")
    body = texts(overview)
    assert "**DOWN**] &nbsp; **db**" in body  # still its true state
    assert ":material/notifications_off: silenced until" in body and body.count("silenced until") == 1  # only db

    at.button(key="silence_end").click().run()
    assert any("Ended db until" in s.value for s in at.success)
    (ended,) = ReadModel(config).silences()
    assert not ended.active(time.time())


def test_the_write_adapter_checks_the_role_itself(write_config, store_redis_url) -> None:
    config = load_config(write_config([{"name": "db", "kind": "postgres", "url": "postgresql://h:1/x"}]))
    client = redis.Redis.from_url(store_redis_url)
    writer = SilenceWriter(config, client)
    now = time.time()
    for who in (None, Operator("vi", "viewer"), Operator("x", None)):
        with pytest.raises(NotAllowed):
            writer.add(who, ["db"], {}, now, now + 60, "r")
    with pytest.raises(ValueError, match="unknown target"):
        writer.add(Operator("bo", "operator"), ["nope"], {}, now, now + 60, "r")
    with pytest.raises(ValueError, match="end after it starts"):
        writer.add(Operator("bo", "operator"), ["db"], {}, now, now - 1, "r")
    made = writer.add(Operator("ad", "admin"), [], {"env": "staging"}, now, now + 60, "r")
    assert [s.id for s in ReadModel(config, client).silences()] == [made.id]
    client.close()
