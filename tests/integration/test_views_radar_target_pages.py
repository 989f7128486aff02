"""Technology radar (live versions, drift flags) and Target detail (every metric, history, events,
incident membership, breaker) on a seeded store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import yaml

from hulk_ops.core.config import load_config
from hulk_ops.core.model import StateChange, iso
from tests.seed import result, seed
from tests.views_support import metrics, plotly_traces, set_last_write, texts, write_breakers

pytest_plugins = ["tests.fixtures_views"]

RADAR = {"components": [
    {"name": "Redis", "quadrant": "Data", "ring": "Adopt", "pinned": "7.2", "matches": {"kinds": ["redis"]}},
    {"name": "PostgreSQL", "quadrant": "Data", "ring": "Adopt", "pinned": "16", "notes": "OLTP",
     "matches": {"kinds": ["postgres"]}},
    {"name": "NATS JetStream", "quadrant": "Messaging", "ring": "Trial", "pinned": "2.10",
     "matches": {"targets": ["bus-*"]}},
    {"name": "Qdrant", "quadrant": "Data", "ring": "Assess", "pinned": "1.19", "matches": {"kinds": ["qdrant"]}},
    {"name": "Kafka", "quadrant": "Messaging", "ring": "Hold", "notes": "no new producers"},
]}


def test_radar_shows_live_versions_and_flags_drift(write_config, open_page, tmp_path) -> None:
    (tmp_path / "radar.yaml").write_text(yaml.safe_dump(RADAR))
    path = write_config([
        {"name": "cache-a", "kind": "redis", "url": "redis://a"},
        {"name": "cache-b", "kind": "redis", "url": "redis://b"},
        {"name": "orders-db", "kind": "postgres", "url": "postgresql://h/x"},
        {"name": "bus-1", "kind": "nats", "url": "nats://h"},
        {"name": "vectors", "kind": "qdrant", "url": "http://q:6333"},
    ], dashboard={"radar_file": "radar.yaml"})  # relative: next to the config file
    (path.parent / "radar.yaml").write_text(yaml.safe_dump(RADAR))
    config = load_config(path)
    now = time.time()
    seed(config, [
        result("cache-a", "redis", "up", now - 1, version="7.2.4"),
        result("cache-b", "redis", "up", now - 1, version="7.0.15"),  # minor drift from 7.2
        result("orders-db", "postgres", "up", now - 1, version="15.4"),  # major drift from 16
        result("bus-1", "nats", "up", now - 1, version="v2.10.7"),  # patch only: as pinned
        result("vectors", "qdrant", "down", now - 1, version=None, error="refused"),  # no version: unknown
    ])
    set_last_write(config, now)
    at = open_page(path, "radar")
    table = at.dataframe[0].value.set_index("component")
    assert table.loc["Redis", "drift"] == "minor drift"
    assert table.loc["Redis", "live versions"] == "7.0.15 (1: cache-b); 7.2.4 (1: cache-a)"
    assert table.loc["PostgreSQL", "drift"] == "MAJOR drift"
    assert table.loc["NATS JetStream", "drift"] == "as pinned"
    assert table.loc["Qdrant", "drift"] == "unknown"
    assert table.loc["Kafka", "live versions"] == "not seen"
    assert metrics(at) == {"Components": "5", "Seen live": "4", "Drifting from pinned": "2",
                           "Past or near end of life": "0"}
    warnings = [w.value for w in at.warning]
    assert "**Redis** pinned 7.2, live 7.0.15 (minor: cache-b)" in warnings
    assert "**PostgreSQL** pinned 16, live 15.4 (major: orders-db)" in warnings
    radar = plotly_traces(at)[0]
    assert radar["type"] == "scatterpolar" and len(radar["text"]) == 5


def test_radar_file_errors_name_the_file_and_field(write_config, open_page, tmp_path) -> None:
    bad = {"components": [{"name": "Redis", "quadrant": "Storage", "ring": "Adopt"}]}
    path = write_config([{"name": "c", "kind": "redis", "url": "redis://a"}],
                        dashboard={"radar_file": str(tmp_path / "bad-radar.yaml")})
    (tmp_path / "bad-radar.yaml").write_text(yaml.safe_dump(bad))
    at = open_page(path, "radar")
    error = at.error[0].value
    assert "bad-radar.yaml: components.0.quadrant:" in error and "Data" in error


def test_target_detail_by_url(write_config, open_page) -> None:
    now = time.time()
    path = write_config([
        {"name": "db", "kind": "postgres", "url": "postgresql://app:s3cret@h/x", "interval_s": 15},
        {"name": "api", "kind": "http", "url": "http://api/", "interval_s": 15, "depends_on": ["db"],
         "labels": {"team": "shop"}},
    ])
    config = load_config(path)
    rng = np.random.default_rng(5)
    lat = rng.lognormal(np.log(20), 0.4, 120)
    ts = now - 1800 + 15 * np.arange(120)
    seed(config, [result("db", "postgres", "down", now - 2, None, None, error="connection refused (h:5432)")] + [
        result("api", "http", "down" if i >= 118 else "up", t, None if i >= 118 else float(v),
               metrics={"status_code": 503 if i >= 118 else 200, "body_bytes": 1000 + i},
               error="expected status 200, got 503" if i >= 118 else None)
        for i, (t, v) in enumerate(zip(ts, lat, strict=True))],
        [StateChange("api", "http", "up", "down", "expected status 200, got 503",
                     iso(datetime.fromtimestamp(ts[118], UTC)))])
    write_breakers(config, {"api": {"state": "opened", "failures": 3, "opened_at": now - 20, "retry_at": now + 10}})
    set_last_write(config, now)

    at = open_page(path, "target", query={"target": "api"})
    body = texts(at)
    assert "**api** · http" in body and "team=shop" in body
    assert "Part of the open incident rooted at **db** (probably caused by it)" in body
    shown = metrics(at)
    assert shown["Circuit breaker"] == "opened"
    stored = lat[:118].astype(np.float32).astype(np.float64)
    assert shown["p95 (1 h)"] == f"{np.percentile(stored, 95):.1f} ms"
    assert shown["Availability"] == f"{100 * 118 / 120:.3f} %"
    every = at.dataframe[0].value.set_index("metric")
    assert every.loc["status_code", "value"] == 503 and every.loc["body_bytes", "value"] == 1119
    events = at.dataframe[1].value
    assert list(events["what"]) == ["up → down"]
    assert at.query_params["target"] == "api"
    links = {(link.proto.label, link.proto.query_string) for link in at.get("page_link")}
    assert ("db (down)", "target=db") in links and ("incident: db", "incident=db") in links
    assert any(t["name"] == "p50" or t["name"] == "latency" for t in plotly_traces(at))

    db = open_page(path, "target", query={"target": "db"})
    assert "s3cret" not in texts(db) and "postgresql://app:***@h/x" in texts(db)
    assert "Probable root cause of an open incident (1 dependent(s) failing: api)" in texts(db)

    db.selectbox(key="target_pick_db").set_value("api").run()
    assert db.query_params["target"] == "api"  # the URL names the target shown, for sharing

    missing = open_page(path, "target", query={"target": "nope"})
    assert "No target named **nope**" in texts(missing)


def test_a_live_version_past_its_eol_is_flagged_on_the_page_and_in_the_report(write_config, open_page,
                                                                              tmp_path) -> None:
    import json
    import subprocess
    import sys

    radar = {"components": [{"name": "Redis", "quadrant": "Data", "ring": "Adopt", "pinned": "7.2",
                             "matches": {"kinds": ["redis"]},
                             "lifecycle": [{"version": "7.0", "released": "2022-04-27", "eol": "2024-07-29"},
                                           {"version": "7.2", "released": "2023-08-15", "eol": "2029-12-01"}],
                             "alternatives": [{"name": "Valkey", "notes": "drop-in"}]}]}
    path = write_config([{"name": "cache-old", "kind": "redis", "url": "redis://a"},
                         {"name": "cache-new", "kind": "redis", "url": "redis://b"},
                         {"name": "api", "kind": "http", "url": "http://api/", "depends_on": ["cache-old"]}],
                        dashboard={"radar_file": "radar.yaml"})
    (path.parent / "radar.yaml").write_text(yaml.safe_dump(radar))
    config = load_config(path)
    now = time.time()
    seed(config, [result("cache-old", "redis", "up", now - 1, version="7.0.15", latency_ms=2.0),
                  result("cache-new", "redis", "down", now - 1, version="7.2.4", latency_ms=None, error="x")])
    set_last_write(config, now)
    at = open_page(path, "radar")
    errors = [e.value for e in at.error]
    assert any(e.startswith("Redis 7.0.15 (7.0) past its end of life since 2024-07-29") and e.endswith(": cache-old")
               for e in errors), errors
    assert metrics(at)["Past or near end of life"] == "1"
    done = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "radar", "--config", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(f["version"], f["past"], f["targets"]) for f in row["eol_flags"]] == [("7.0.15", True, ["cache-old"])]
    assert row["targets"] == ["cache-new", "cache-old"] and row["dependents"] == ["api"]
    assert row["samples_30d"] == 2 and row["availability_30d_pct"] == 50.0 and row["p95_30d_ms"] == 2.0
    assert row["alternatives"] == [{"name": "Valkey", "notes": "drop-in"}]
