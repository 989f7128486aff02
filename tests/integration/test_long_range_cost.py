"""Cost month by month from the long-range tier: 34 days of a RunPod $/h rate and a cluster's CPU requests go
through the collector's store and the rollup job, the raw history of all but the last hours is deleted, and
`hulk-ops report cost` and the Cost page still show each month's spend as the samples give it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from hulk_ops.collectors.codec import HOUR, Keys
from hulk_ops.collectors.rollup_job import RollupJob
from hulk_ops.core.config import load_config
from tests.seed import result, seed
from tests.views_support import set_last_write

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]
STEP_S = 600
GPU_PER_HR = 2.5
CPUS, CPU_HOUR = 8.0, 0.04


@pytest.fixture
def month_and_more(write_config, store_redis_url, store_prefix):
    now = time.time()
    targets = [
        {"name": "gpus", "kind": "runpod", "api_key": "k", "interval_s": STEP_S},
        {"name": "cluster", "kind": "kubernetes", "url": "https://127.0.0.1:1", "token": "t", "interval_s": STEP_S},
    ]
    store = {"redis_url": store_redis_url, "prefix": store_prefix}
    sections = {"actions": {"prices": {"cpu_hour": CPU_HOUR, "gib_hour": 0, "gpu_hour": 0}}}
    long_config = load_config(write_config(targets, store={**store, "retention_h": 1000}, **sections))
    stamps = now - 34 * 86_400 + np.arange(int(34 * 86_400 // STEP_S)) * STEP_S  # within the hourly retention
    results = []
    for t in stamps:
        results.append(result("gpus", "runpod", "up", float(t), 50.0, metrics={"cost_per_hr_total": GPU_PER_HR}))
        results.append(result("cluster", "kubernetes", "up", float(t), 20.0, metrics={"cpu_requests": CPUS}))
    seed(long_config, results)

    async def roll() -> None:
        client = aioredis.Redis.from_url(store_redis_url)
        try:
            await RollupJob(client, Keys(store_prefix), long_config.store.rollups, 1000,
                            lambda: ["gpus", "cluster"], rescan_h=1000).once(now)
        finally:
            await client.aclose()

    asyncio.run(roll())
    sync = redis.Redis.from_url(store_redis_url)
    keys = Keys(store_prefix)
    try:
        old = [keys.metric(n, m, h) for n, m in (("gpus", "cost_per_hr_total"), ("cluster", "cpu_requests"))
               for h in range(int(stamps[0] // HOUR), int(now // HOUR) - 1)]
        old += [keys.history(n, h) for n in ("gpus", "cluster") for h in range(int(stamps[0] // HOUR),
                                                                                int(now // HOUR) - 1)]
        sync.delete(*old)
    finally:
        sync.close()
    path = write_config(targets, store={**store, "retention_h": 24}, **sections)
    set_last_write(load_config(path), now)
    return path, stamps, now


def _month(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def test_report_cost_per_month(month_and_more):
    path, stamps, now = month_and_more
    closed = stamps[stamps < ((now - 60) // HOUR) * HOUR]  # the hours the rollup job had closed
    this_month = _month(now)
    first_month = _month(stamps[0])
    for month in sorted({first_month, this_month}):
        out = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "cost", "--config", str(path), "--month",
                              month, "--json"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        (row,) = [orjson.loads(line) for line in out.stdout.splitlines()]
        samples = sum(1 for t in closed if _month(t) == month)
        # every sample covers STEP_S of its hour at the sampled rate
        assert row["month"] == month
        assert row["by_source"]["runpod_pods"] == pytest.approx(GPU_PER_HR * samples * STEP_S / 3600, rel=1e-4)
        assert row["by_source"]["kubernetes_namespaces"] == pytest.approx(CPUS * CPU_HOUR * samples * STEP_S / 3600,
                                                                          rel=1e-4)
        assert row["total_usd"] == pytest.approx(sum(row["by_source"].values()), abs=1e-3)
        # the history starts partway through the first month; this month is covered day by day so far
        assert row["complete"] is (month == this_month and first_month != this_month)
    bad = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "cost", "--config", str(path), "--month",
                          "2026-13"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "invalid month '2026-13'" in bad.stderr


def test_cost_page_shows_months(month_and_more, open_page):
    path, stamps, now = month_and_more
    at = open_page(path, "cost")
    assert not at.exception
    frames = [f.value for f in at.dataframe if "month" in f.value.columns]
    assert frames, "the month-by-month table is shown"
    table = frames[0].set_index("month")
    previous = _month(now - 86_400 * 31) if _month(now - 86_400 * 31) != _month(now) else None
    if previous in table.index:
        samples = sum(1 for t in stamps if _month(t) == previous)
        assert table.loc[previous, "runpod pods $"] == round(GPU_PER_HR * samples * STEP_S / 3600, 2)
    assert {"vs previous %", "days with data", "complete"} <= set(table.columns)
    if len(table) >= 2:
        first, second = table.iloc[-2], table.iloc[-1]
        assert second["vs previous %"] == pytest.approx(100 * (second["total $"] / first["total $"] - 1), abs=0.15)
    assert any(b.label == "Download CSV (months)" for b in at.get("download_button"))
