"""Capacity over weeks: ten days of a Redis whose memory grows by a fixed amount a day go through the store and
the rollup job, the raw history of all but the last hours is deleted, and the Capacity page at "7 d" fits the
growth from the hour summaries: the trend per day and the ETA to maxmemory are the seeded ones."""

from __future__ import annotations

import asyncio
import time

import numpy as np
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
GROWTH_PER_DAY = 50e6
LIMIT = 4e9


def test_capacity_trend_over_seven_days_from_summaries(write_config, store_redis_url, store_prefix, open_page):
    now = time.time()
    targets = [{"name": "cache", "kind": "redis", "url": "redis://127.0.0.1:1", "interval_s": STEP_S}]
    store = {"redis_url": store_redis_url, "prefix": store_prefix}
    long_config = load_config(write_config(targets, store={**store, "retention_h": 300}))
    stamps = now - 10 * 86_400 + np.arange(int(10 * 86_400 // STEP_S)) * STEP_S
    used = 1e9 + GROWTH_PER_DAY * (stamps - stamps[0]) / 86_400
    seed(long_config, [result("cache", "redis", "up", float(t), 0.4,
                              metrics={"used_memory_bytes": float(u), "maxmemory_bytes": LIMIT})
                       for t, u in zip(stamps, used, strict=True)])

    async def roll() -> None:
        client = aioredis.Redis.from_url(store_redis_url)
        try:
            await RollupJob(client, Keys(store_prefix), long_config.store.rollups, 300, lambda: ["cache"],
                            rescan_h=300).once(now)
        finally:
            await client.aclose()

    asyncio.run(roll())
    keys = Keys(store_prefix)
    sync = redis.Redis.from_url(store_redis_url)
    try:
        sync.delete(*[keys.metric("cache", "used_memory_bytes", h)
                      for h in range(int(stamps[0] // HOUR), int(now // HOUR) - 1)])
    finally:
        sync.close()
    path = write_config(targets, store={**store, "retention_h": 24})
    set_last_write(load_config(path), now)

    at = open_page(path, "capacity", state={"capacity_window": "7 d"})
    assert not at.exception
    frame = next(f.value for f in at.dataframe if "resource" in f.value.columns)
    row = frame.set_index("resource").loc["memory"]
    assert row["points"] >= 7 * 24 - 2, "one point per summarised hour over seven days"
    expected_eta_days = (LIMIT - used[-1]) / GROWTH_PER_DAY
    assert row["ETA days"] == pytest.approx(expected_eta_days, rel=0.01)
    assert row["trend /day"] == "47.7 MiB"  # 50e6 bytes a day, in binary units
