"""The Overview page rendered by Streamlit's AppTest from a seeded Redis store."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
from streamlit.testing.v1 import AppTest

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import load_config
from hulk_ops.core.model import StateChange
from tests.seed import result, seed

APP = str(Path(__file__).resolve().parents[2] / "hulk_ops" / "dashboard" / "app.py")


def run_app(config_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("HULK_OPS_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [e.value for e in at.error] + [s.value for s in at.success]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_overview_shows_counts_tiles_stale_and_events(write_config, monkeypatch, store_redis_url) -> None:
    path = write_config([
        {"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 10},
        {"name": "db", "kind": "postgres", "url": "postgresql://h:1/x", "interval_s": 10},
        {"name": "bus", "kind": "nats", "url": "nats://h:1", "interval_s": 10},
        {"name": "old", "kind": "redis", "url": "redis://h:2", "interval_s": 10},
        {"name": "new", "kind": "nats", "url": "nats://h:2", "interval_s": 10},
    ])
    config = load_config(path)
    now = time.time()
    seed(config, [
        result("cache", "redis", "up", now - 2, latency_ms=0.42, version="7.0.15"),
        result("db", "postgres", "down", now - 3, latency_ms=None, version=None,
               error="connection refused (10.0.0.5:5432)"),
        result("bus", "nats", "degraded", now - 1, version="2.10.1", error="consumer.S.w.pending = 50 (> 10)"),
        result("old", "redis", "up", now - 45, version="7.2.0"),  # 45 s > 3 x 10 s: stale, never "up"
    ], [StateChange("db", "postgres", "up", "down", "connection refused (10.0.0.5:5432)",
                    result("db", "postgres", "down", now - 3).observed_at)])
    redis.Redis.from_url(store_redis_url).set(Keys(config.store.prefix).last_write, repr(now))

    at = run_app(path, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Targets": "5", "Up": "1", "Degraded": "1", "Down": "1", "Stale": "1", "Never seen": "1"}
    body = texts(at)
    assert "**DOWN**] &nbsp; **db**" in body
    assert "connection refused (10.0.0.5:5432)" in body
    assert "**DEGRADED**] &nbsp; **bus**" in body
    assert "**STALE**] &nbsp; **old**" in body
    assert "**UP**] &nbsp; **cache**" in body
    assert "redis · 7.0.15 · 0.4 ms" in body
    assert "No collector is writing" not in body
    # needs-attention tiles come before the healthy ones
    assert body.index("**db**") < body.index("**cache**")
    events = at.dataframe[0].value
    assert list(events["target"]) == ["db"]
    assert list(events["change"]) == ["up → down"]


def test_banner_when_no_collector_writes(write_config, monkeypatch) -> None:
    path = write_config([{"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 5}])
    config = load_config(path)
    seed(config, [result("cache", "redis", "up", time.time() - 1)])
    redis.Redis.from_url(config.store.redis_url).set(Keys(config.store.prefix).last_write, repr(time.time() - 60))
    body = texts(run_app(path, monkeypatch))
    assert "No collector is writing" in body
    assert re.search(r"\(last write: 6\d s ago\)", body), body


def test_store_unreachable_shows_a_banner_not_a_traceback(tmp_path, monkeypatch, closed_port) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"store: {{redis_url: 'redis://:hunter2-secret@127.0.0.1:{closed_port}/0'}}\n"
                    "targets: [{name: cache, kind: redis, url: 'redis://h:1'}]\n")
    at = run_app(path, monkeypatch)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Store unreachable" in errors[0]
    assert f"127.0.0.1:{closed_port}" in errors[0]
    assert "hunter2-secret" not in errors[0]


def test_many_targets_use_a_table_for_the_healthy_ones(write_config, monkeypatch) -> None:
    targets = [{"name": f"svc-{i:03d}", "kind": "redis", "url": "redis://h:1", "interval_s": 15} for i in range(150)]
    path = write_config(targets)
    config = load_config(path)
    now = time.time()
    seed(config, [result(t["name"], "redis", "down" if i < 3 else "up", now - 1) for i, t in enumerate(targets)])
    at = run_app(path, monkeypatch)
    body = texts(at)
    assert body.count("**DOWN**]") == 3  # tiles only for what needs attention
    healthy = at.dataframe[0].value
    assert len(healthy) == 147 and set(healthy["status"]) == {"up"}


def test_dependents_of_an_open_incident_are_folded_not_repeated(write_config, monkeypatch) -> None:
    # 2,000 targets: a queue down, 49 services failing behind it, one unrelated failure and one stale target
    targets = [{"name": "queue", "kind": "nats", "url": "nats://h:1", "interval_s": 15}]
    targets += [{"name": f"svc-{i:04d}", "kind": "redis", "url": "redis://h:1", "interval_s": 15,
                 "depends_on": ["queue"] if i < 49 else []} for i in range(1999)]
    path = write_config(targets)
    config = load_config(path)
    now = time.time()
    results = [result("queue", "nats", "down", now - 1, latency_ms=None, error="connection refused")]
    for i, t in enumerate(targets[1:]):
        status = "down" if i < 49 or i == 100 else "up"
        results.append(result(t["name"], "redis", status, now - (60 if i == 200 else 1),
                              error="upstream queue unreachable" if status == "down" else None))
    seed(config, results)
    redis.Redis.from_url(config.store.redis_url).set(Keys(config.store.prefix).last_write, repr(now))

    started = time.perf_counter()
    at = run_app(path, monkeypatch)
    elapsed = time.perf_counter() - started
    body = texts(at)
    assert "probable root cause **queue** (nats)" in body
    assert "**49** dependent(s) failing" in body
    links = {(link.proto.label, link.proto.query_string) for link in at.get("page_link")}
    assert ("49 dependent(s) folded here", "incident=queue") in links
    # needs attention: the root, the unrelated failure and the stale target; none of the 49 dependents
    assert "Needs attention (3)" in [h.value for h in at.subheader]
    assert "49 failing dependent(s) are not repeated here" in body
    assert body.count("**DOWN**] &nbsp;") == 2
    assert "**DOWN**] &nbsp; **queue**" in body and "**DOWN**] &nbsp; **svc-0100**" in body
    assert "**STALE**] &nbsp; **svc-0200**" in body
    assert "**svc-0000**" not in body
    assert {m.label: m.value for m in at.metric}["Down"] == "51"  # counts still count every target
    assert elapsed < 20, elapsed
