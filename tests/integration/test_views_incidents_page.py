"""Incidents page on a seeded store: the open incident grouped under its root cause with what changed in the
30 minutes before, and one timeline of every source, newest first, with working filters."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from hulk_ops.core.config import load_config
from hulk_ops.core.model import StateChange, iso
from tests.seed import result, seed
from tests.views_support import in_order, set_last_write, texts, xadd

pytest_plugins = ["tests.fixtures_views"]


def at(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


@pytest.fixture
def incident_store(write_config):
    now = time.time()
    path = write_config([
        {"name": "db", "kind": "postgres", "url": "postgresql://h/x", "interval_s": 10},
        {"name": "api", "kind": "http", "url": "http://api/", "interval_s": 10, "depends_on": ["db"]},
        {"name": "web", "kind": "http", "url": "http://web/", "interval_s": 10, "depends_on": ["api"]},
        {"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 10},
        {"name": "prom", "kind": "prometheus", "url": "http://prom:9090", "interval_s": 10},
        {"name": "k8s", "kind": "kubernetes", "url": "https://k:6443", "token": "t", "interval_s": 10},
        {"name": "gpu", "kind": "runpod", "api_key": "k", "interval_s": 10},
    ])
    config = load_config(path)
    alert = {"name": "PostgresDown", "severity": "critical", "state": "firing", "active_at": at(now - 650),
             "summary": "orders database unreachable", "labels": {"instance": "db:5432"}}
    warning = {"time": at(now - 800), "type": "Warning", "reason": "BackOff", "object": "Pod/api-7",
               "namespace": "shop", "message": "Back-off restarting failed container", "count": 3}
    pod = {"id": "p1", "name": "train-a", "status": "RUNNING", "gpu_type": "A100", "gpu_count": 1,
           "cost_per_hr": 1.89, "uptime_s": 1200, "gpu_util_pct": 80.0, "idle": False}
    results = [
        result("db", "postgres", "down", now - 3, None, None, error="connection refused (10.0.0.5:5432)"),
        result("api", "http", "down", now - 2, None, None, error="expected status 200, got 503"),
        result("web", "http", "degraded", now - 2, 900.0, None, error="latency_ms = 900 (> 500)"),
        result("cache", "redis", "up", now - 1, 0.4, "7.2.4"),
        result("prom", "prometheus", "up", now - 1, 5.0, "2.53.0", metrics={"alerts_firing": 1},
               details={"alerts": [alert]}),
        result("k8s", "kubernetes", "up", now - 1, 20.0, "v1.33.4", details={"events": [warning]}),
        result("gpu", "runpod", "up", now - 5, 150.0, None, details={"pods": [pod]}),
    ]
    changes = [StateChange(t, k, p, c, e, at(now + dt)) for t, k, p, c, e, dt in [
        ("db", "postgres", "up", "degraded", "slow", -5000), ("db", "postgres", "degraded", "up", "", -4900),
        ("cache", "redis", "up", "down", "refused", -3000), ("cache", "redis", "down", "up", "", -2900),
        ("cache", "redis", "up", "degraded", "evictions", -1500), ("cache", "redis", "degraded", "up", "", -1400),
        ("db", "postgres", "up", "down", "connection refused (10.0.0.5:5432)", -600),
        ("api", "http", "up", "down", "expected status 200, got 503", -590),
        ("web", "http", "up", "degraded", "latency_ms = 900 (> 500)", -580),
    ]]
    seed(config, results, changes)
    xadd(config, {"source": "action", "type": "action", "target": "api", "kind": "http", "action": "scale",
                  "outcome": "succeeded", "user": "ana", "object": "shop/api", "summary": "replicas 3 → 5"}, now - 900)
    xadd(config, {"source": "deploy", "type": "deploy", "target": "api", "title": "deployed v2.3",
                  "commit": "8f2c1e"}, now - 700)
    set_last_write(config, now)
    return path, now


def test_opens_on_the_root_cause_with_what_changed_before(incident_store, open_page) -> None:
    path, _ = incident_store
    page = open_page(path, "incidents")
    body = texts(page)
    assert "Open incidents (1)" in body
    assert "probable root cause **db** (down) · 2 dependent(s)" in body
    assert "Probable root cause: :red[■ **DOWN**] **db** (postgres)" in body
    dependents = page.dataframe[0].value
    assert list(dependents["target"]) == ["api", "web"]
    assert list(dependents["status"]) == ["down", "degraded"]
    assert dependents["detail"].tolist() == ["target?target=api", "target?target=web"]

    before = page.dataframe[1].value
    whats = list(before["what"])
    targets = list(before["target"])
    assert whats[0] == "up → down" and targets[0] == "db"
    assert ("alert PostgresDown firing", "prom") in zip(whats, targets, strict=True)
    assert ("deployed v2.3", "api") in zip(whats, targets, strict=True)  # a generic event, by its title
    assert ("BackOff shop/Pod/api-7", "k8s") in zip(whats, targets, strict=True)
    assert ("scale succeeded by ana", "api") in zip(whats, targets, strict=True)
    assert ("pod train-a started", "gpu") in zip(whats, targets, strict=True)
    assert ("up → degraded", "cache") in zip(whats, targets, strict=True)
    assert len(before) == 8  # nothing older than 30 minutes before the start, nothing after it
    times = list(before["time"])
    assert times == sorted(times, reverse=True)
    during = page.dataframe[2].value
    assert list(zip(during["target"], during["what"], strict=True)) == [  # its own targets since it started
        ("web", "up → degraded"), ("api", "up → down"), ("db", "up → down")]


def test_timeline_merges_every_source_newest_first_and_filters(incident_store, open_page) -> None:
    path, _ = incident_store
    page = open_page(path, "incidents")
    timeline = page.dataframe[-1].value
    times = list(timeline["time"])
    assert times == sorted(times, reverse=True)
    assert {"probe", "prometheus", "kubernetes", "runpod", "action", "deploy"} <= set(timeline["source"])
    assert len(timeline) == 9 + 5  # 9 state changes, alert, Kubernetes warning, pod start, action, deploy

    page.multiselect(key="timeline_severity").set_value(["critical"]).run()
    critical = page.dataframe[-1].value
    assert set(critical["severity"]) == {"■ critical"}
    assert sorted(zip(critical["target"], critical["what"], strict=True)) == [
        ("api", "up → down"), ("cache", "up → down"), ("db", "up → down"), ("prom", "alert PostgresDown firing")]

    page.multiselect(key="timeline_severity").set_value([]).run()
    page.multiselect(key="timeline_targets").set_value(["cache"]).run()
    cache = page.dataframe[-1].value
    assert list(cache["what"]) == ["degraded → up", "up → degraded", "down → up", "up → down"]

    page.multiselect(key="timeline_targets").set_value([]).run()
    page.multiselect(key="timeline_sources").set_value(["action"]).run()
    actions = page.dataframe[-1].value
    assert list(actions["what"]) == ["scale succeeded by ana"]
    assert "replicas 3 → 5" in actions["more"].iloc[0]

    page.multiselect(key="timeline_sources").set_value([]).run()
    page.multiselect(key="timeline_kinds").set_value(["kubernetes"]).run()
    assert list(page.dataframe[-1].value["source"]) == ["kubernetes"]

    page.multiselect(key="timeline_kinds").set_value([]).run()
    page.multiselect(key="timeline_sources").set_value(["probe"]).run()
    page.selectbox(key="timeline_window").set_value("15 min").run()
    recent = page.dataframe[-1].value
    assert list(recent["target"]) == ["web", "api", "db"]  # the last 15 minutes only
    assert not page.exception


def test_overview_shows_open_incidents_first(incident_store, open_page) -> None:
    path, _ = incident_store
    page = open_page(path)
    body = texts(page)
    assert "Open incidents (1)" in body
    ordered = in_order(page)
    assert ordered.index("probable root cause **db** (postgres)") < ordered.index("Needs attention")
    assert "**2** dependent(s) failing" in body
    assert "dependents: api, web" in body
    links = [(link.proto.label, link.proto.query_string) for link in page.get("page_link")]
    assert ("2 dependent(s) folded here", "incident=db") in links  # the incident, its dependents folded under it
    assert ("details", "target=cache") in links  # every tile leads to its target
    assert ("details", "target=api") not in links  # a dependent is folded under its incident, not a tile again


def test_a_flood_of_incidents_continues_in_a_table(write_config, open_page) -> None:
    now = time.time()
    path = write_config([{"name": f"svc-{i:02d}", "kind": "tcp", "url": "tcp://h:1"} for i in range(30)])
    config = load_config(path)
    seed(config, [result(f"svc-{i:02d}", "tcp", "down", now - 1, None, None, error="refused") for i in range(30)])
    page = open_page(path, "incidents", query={"incident": "svc-29"})
    assert "Open incidents (30)" in texts(page)
    assert len(page.expander) == 26  # the first 25 and the one asked for by URL, which is open
    assert [e.label for e in page.expander if "svc-29" in e.label]
    rest = page.dataframe[0].value
    assert len(rest) == 4 and "svc-29" not in set(rest["root cause"])
    assert rest["open"].iloc[0] == f"incidents?incident={rest['root cause'].iloc[0]}"
