"""Latency & SLOs page on a seeded store: the percentiles, availability and error budget it shows are the
ones computed from the seeded samples, and no chart series carries more than MAX_POINTS points."""

from __future__ import annotations

import time

import numpy as np

from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel.series import MAX_POINTS
from tests.seed import result, seed
from tests.views_support import plotly_traces, set_last_write, trace_points

pytest_plugins = ["tests.fixtures_views"]


def seeded(write_config, now: float) -> tuple:
    path = write_config([
        {"name": "api", "kind": "http", "url": "http://h/", "interval_s": 15},
        {"name": "db", "kind": "postgres", "url": "postgresql://h/x", "interval_s": 15, "slo": {"availability": 99}},
        {"name": "fast", "kind": "http", "url": "http://h2/", "interval_s": 1, "timeout_s": 1},
        {"name": "silent", "kind": "redis", "url": "redis://h:1", "interval_s": 15},
    ], slo={"availability": 99.5, "latency_p95_ms": 50})
    config = load_config(path)
    rng = np.random.default_rng(42)
    api_ts = now - 3000 + np.arange(200) * 15
    api_lat = rng.lognormal(np.log(30), 0.5, 200)
    db_ts = now - 3000 + np.arange(200) * 15 + 3
    db_lat = rng.lognormal(np.log(2), 0.3, 200)
    db_down = {17, 120, 121}
    fast_ts = now - 3000 + np.arange(2900) * 1.0  # 2,900 samples in the last hour: must be downsampled
    results = [result("api", "http", "up", t, float(v)) for t, v in zip(api_ts, api_lat, strict=True)]
    results += [result("db", "postgres", "down" if i in db_down else "up", t, None if i in db_down else float(v),
                       error="connection refused" if i in db_down else None)
                for i, (t, v) in enumerate(zip(db_ts, db_lat, strict=True))]
    results += [result("fast", "http", "up", t, 5.0 + (i % 7)) for i, t in enumerate(fast_ts)]
    seed(config, sorted(results, key=lambda r: r.observed_at))
    set_last_write(config, now)
    return path, api_lat, db_lat, db_down


def stored(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).astype(np.float64)  # the store keeps float32 latencies


def test_percentiles_availability_and_error_budget(write_config, open_page) -> None:
    now = time.time()
    path, api_lat, db_lat, db_down = seeded(write_config, now)
    at = open_page(path, "latency")
    table = at.dataframe[1].value.set_index("target")
    api = table.loc["api"]
    p50, p95, p99 = np.percentile(stored(api_lat), [50, 95, 99])
    assert api["samples"] == 200 and api["down"] == 0
    assert (api["p50 ms"], api["p95 ms"], api["p99 ms"]) == (round(p50, 2), round(p95, 2), round(p99, 2))
    assert api["availability %"] == 100.0 and api["budget left %"] == 100.0
    assert api["objective %"] == 99.5 and api["p95 objective ms"] == 50
    assert api["p95 within"] == ("yes" if p95 <= 50 else "NO")

    db = table.loc["db"]
    up = stored(np.delete(db_lat, sorted(db_down)))
    assert db["p95 ms"] == round(float(np.percentile(up, 95)), 2)
    assert db["down"] == 3 and db["availability %"] == round(100 * 197 / 200, 3)
    # objective 99 % of 200 samples allows 2 down; 3 down spent 150 % of it
    assert db["objective %"] == 99 and db["budget left %"] == round(100 * (1 - 3 / 2), 1)
    assert table.loc["silent"]["samples"] == 0 and np.isnan(table.loc["silent"]["budget left %"])
    assert table.index[0] == "db"  # least budget left first

    kinds = at.dataframe[0].value.set_index("kind")
    http = np.concatenate([stored(api_lat), np.float64(5.0 + np.arange(2900) % 7)])
    assert kinds.loc["http", "targets"] == 2
    assert kinds.loc["http", "p95 ms"] == round(float(np.percentile(http, 95)), 2)
    assert kinds.loc["postgres", "availability %"] == round(100 * 197 / 200, 3)
    body = "\n".join(c.value for c in at.caption)
    assert "Read from the store at" in body and "newest collector write" in body


def test_compared_series_are_downsampled_server_side(write_config, open_page) -> None:
    now = time.time()
    path, *_ = seeded(write_config, now)
    at = open_page(path, "latency", query={"target": "fast"})
    assert at.multiselect(key="latency_compare").value == ["fast"]
    traces = plotly_traces(at)
    assert traces, "the comparison chart is drawn"
    fast = next(t for t in traces if t["name"] == "fast")
    assert 0 < trace_points(fast) <= MAX_POINTS  # 2,900 samples in, buckets out
    assert all(trace_points(t) <= 2000 for t in traces)

    at.multiselect(key="latency_compare").set_value(["api", "db"]).run()
    names = {t["name"] for t in plotly_traces(at)}
    assert {"api", "db"} <= names  # several targets on one chart


def test_long_window_of_a_large_scope_uses_the_hourly_summaries(write_config, open_page) -> None:
    """Over 6 h, more than EXACT_CHUNKS target-hours take the histogram path: within ±3.1 %, counts exact."""
    now = time.time()
    targets = [{"name": f"svc-{i:03d}", "kind": "tcp", "url": "tcp://h:1", "interval_s": 60} for i in range(100)]
    path = write_config(targets)
    config = load_config(path)
    rng = np.random.default_rng(1)
    lat = rng.lognormal(np.log(3), 0.4, (100, 60))
    seed(config, [result(f"svc-{i:03d}", "tcp", "up", now - 3600 + k * 60, float(lat[i, k]))
                  for k in range(60) for i in range(100)])
    at = open_page(path, "latency", state={"latency_window": "6 h"})
    assert "percentiles from per-hour histograms" in "\n".join(c.value for c in at.caption)
    table = at.dataframe[1].value.set_index("target")
    for i in (0, 57, 99):
        row = table.loc[f"svc-{i:03d}"]
        assert row["samples"] == 60
        assert abs(row["p95 ms"] / np.percentile(stored(lat[i]), 95) - 1) < 0.032
