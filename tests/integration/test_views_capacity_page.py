"""Capacity page on a seeded store: headroom from the newest result, the trend a least-squares line through
the stored history, and what runs out first named with its ETA."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hulk_ops.core.config import load_config
from tests.seed import result, seed
from tests.views_support import set_last_write, texts

pytest_plugins = ["tests.fixtures_views"]
GIB = 1 << 30


def test_eta_of_what_runs_out_first(write_config, open_page) -> None:
    now = time.time()
    path = write_config([
        {"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 60},
        {"name": "orders-db", "kind": "postgres", "url": "postgresql://h/x", "interval_s": 60},
        {"name": "bus", "kind": "nats", "url": "nats://h:1", "interval_s": 60},
        {"name": "k8s", "kind": "kubernetes", "url": "https://k:6443", "token": "t", "interval_s": 60},
    ])
    config = load_config(path)
    ts = now - 3540 + 60.0 * np.arange(60)
    rng = np.random.default_rng(3)
    # cache memory grows ~0.16 GiB/day with noise: 0.5 GiB of headroom lasts about 3.2 days
    slope = 0.5 * GIB / (3.2 * 86400)
    memory = 0.5 * GIB + slope * (ts - ts[0]) + rng.normal(0, 2e5, ts.size)
    conns = 40 + 0.01 * (ts - ts[0]) / 60  # 0.6 connection/h towards 200: ~ 11 days
    results = []
    for i, t in enumerate(ts):
        results.append(result("cache", "redis", "up", t, 0.3, "7.2.4", metrics={
            "used_memory_bytes": float(memory[i]), "maxmemory_bytes": float(GIB), "connected_clients": 12,
            "maxclients": 10000}))
        results.append(result("orders-db", "postgres", "up", t + 1, 1.0, "16.4", metrics={
            "connections": float(conns[i]), "max_connections": 200.0, "database_size_bytes": 4e9 + 1e5 * i}))
    results.append(result("bus", "nats", "up", now - 2, 0.5, "2.10.7", metrics={
        "stream.ORDERS.bytes": 9.9e8, "stream.ORDERS.max_bytes": 1e9, "stream.ORDERS.messages": 12.0,
        "consumer.ORDERS.worker.pending": 7.0}))
    results.append(result("k8s", "kubernetes", "up", now - 2, 20.0, "v1.33.4", metrics={
        "node.gpu-1.cpu_allocatable": 32.0, "node.gpu-1.cpu_requests": 30.0, "node.gpu-1.memory_allocatable_gib": 128.0,
        "node.gpu-1.memory_requests_gib": 64.0, "node.gpu-1.gpu_allocatable": 4.0, "node.gpu-1.gpu_requests": 4.0,
        "cpu_allocatable": 32.0, "cpu_requests": 30.0, "memory_allocatable_gib": 128.0, "memory_requests_gib": 64.0}))
    seed(config, sorted(results, key=lambda r: r.observed_at))
    set_last_write(config, now)

    at = open_page(path, "capacity")
    stored = memory.astype(np.float32).astype(np.float64)  # the store keeps float32 values
    fit_slope = np.polyfit(ts, stored, 1)[0]
    eta_days = (GIB - float(memory[-1])) / fit_slope / 86400  # used: the newest result; slope: the history
    assert 3.0 < eta_days < 3.4
    first = at.error[0].value if at.error else at.warning[0].value
    assert first.startswith("Runs out first: ")
    # a full GPU node is full now, before anything that is still growing
    assert "**k8s** node gpu-1 GPU requests is full" in first
    body = texts(at)
    assert f"**cache** memory full in ~{eta_days:.1f} days at the current trend" in body

    redis_rows = at.dataframe[0].value.set_index("resource")
    assert redis_rows.loc["memory", "ETA days"] == pytest.approx(eta_days, abs=0.006)
    assert redis_rows.loc["memory", "used %"] == round(100 * float(memory[-1]) / GIB, 1)
    assert redis_rows.loc["memory", "points"] == 60
    assert np.isnan(redis_rows.loc["clients", "ETA days"])  # flat: never runs out

    pg = at.dataframe[1].value.set_index("resource")
    conn_slope = np.polyfit(ts + 1, conns.astype(np.float32).astype(np.float64), 1)[0]
    assert pg.loc["connections", "ETA days"] == pytest.approx((200 - float(conns[-1])) / conn_slope / 86400, abs=0.006)
    assert pg.loc["connections", "limit"] == "200"
    assert pg.loc["database size", "limit"] == "-"  # growth without a limit: trend only

    nats = at.dataframe[2].value.set_index("resource")
    assert nats.loc["stream ORDERS bytes", "used %"] == 99.0
    assert "consumer ORDERS/worker lag" in nats.index
    assert "trends: least squares since" in "\n".join(c.value for c in at.caption)
