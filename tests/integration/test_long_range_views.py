"""Windows beyond the raw history: nine days of samples go through the collector's store and the rollup job,
the raw chunks of everything but the last hours are then deleted, and the Latency & SLOs page and
`hulk-ops report slo` still show 7-day figures that match the samples: counts exactly, percentiles within
the histogram's stated error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from hulk_ops.collectors import rollups
from hulk_ops.collectors.codec import HOUR, Keys
from hulk_ops.collectors.rollup_job import RollupJob
from hulk_ops.core.config import load_config
from tests.seed import result, seed
from tests.views_support import set_last_write

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]
TARGETS = {"orders-db": "postgres", "cache": "redis", "queue": "nats"}
STEP_S = 600


@pytest.fixture
def nine_days(write_config, store_redis_url, store_prefix):
    now = time.time()
    targets = [{"name": n, "kind": k, "url": f"{k}://127.0.0.1:1", "interval_s": 60} for n, k in TARGETS.items()]
    store = {"redis_url": store_redis_url, "prefix": store_prefix}
    long_config = load_config(write_config(targets, store={**store, "retention_h": 240}))
    rng = np.random.default_rng(11)
    first = now - 9 * 86_400
    stamps = first + np.arange(int((now - first) // STEP_S)) * STEP_S
    samples = {}
    results = []
    for k, name in enumerate(TARGETS):
        lat = rng.lognormal(np.log(2 + 3 * k), 0.5, stamps.size)
        down = (np.arange(stamps.size) + k) % (97 + k) == 0
        samples[name] = (stamps, lat.astype(np.float32).astype(np.float64), down)
        results += [result(name, TARGETS[name], "down" if d else "up", float(t), None if d else float(v))
                    for t, v, d in zip(stamps, lat, down, strict=True)]
    seed(long_config, sorted(results, key=lambda r: r.observed_at))

    async def roll() -> None:
        client = aioredis.Redis.from_url(store_redis_url)
        try:
            await RollupJob(client, Keys(store_prefix), long_config.store.rollups, 240, lambda: list(TARGETS),
                            rescan_h=240).once()
        finally:
            await client.aclose()

    asyncio.run(roll())
    sync = redis.Redis.from_url(store_redis_url)
    keys = Keys(store_prefix)
    current = int(now // HOUR)
    try:
        old = [keys.history(n, h) for n in TARGETS for h in range(int(first // HOUR), current - 1)]
        sync.delete(*old)  # only the summaries know these hours now
    finally:
        sync.close()
    path = write_config(targets, store={**store, "retention_h": 24}, slo={"availability": 99.5})
    set_last_write(load_config(path), now)
    return path, samples, now


def _expected(samples, start: float, end: float) -> tuple[int, int, float]:
    stamps, lat, down = samples
    inside = (stamps >= start) & (stamps <= end)
    return int(inside.sum()), int((inside & down).sum()), float(np.percentile(lat[inside & ~down], 95))


def test_report_slo_over_seven_days_from_summaries(nine_days):
    path, samples, now = nine_days
    out = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "slo", "--config", str(path), "--window", "7d",
                          "--json"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    lines = [orjson.loads(line) for line in out.stdout.splitlines()]
    rows = {r["target"]: r for r in lines if "target" in r}
    start = int((now - 7 * 86_400) // HOUR) * HOUR
    for name in TARGETS:
        row = rows[name]
        count, down, p95 = _expected(samples[name], start, row["window_end"])
        assert row["window_start"] == start
        assert (row["samples"], row["down"]) == (count, down)
        assert abs(row["p95_ms"] / p95 - 1) < rollups.HIST_ERROR_PCT / 100
        allowed = 0.005 * count
        assert row["window"] == "7d"
        assert row["budget_remaining_pct"] == pytest.approx(100 * (1 - down / allowed))
        assert set(row["burn_rate"]) == {"1h", "6h", "3d"}
        stamps, _lat, down_mask = samples[name]
        for label, since in (("1h", row["window_end"] - 3600), ("3d", (row["window_end"] - 3 * 86_400) // HOUR * HOUR)):
            inside = (stamps >= since) & (stamps <= row["window_end"])
            expected = (down_mask[inside].sum() / inside.sum()) / 0.005 if inside.sum() >= 3 else None
            assert row["burn_rate"][label] == pytest.approx(expected, abs=1e-9), (name, label)
    kinds = {r["kind"]: r for r in lines if "target" not in r}
    assert set(kinds) == set(TARGETS.values())

    one = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "slo", "--config", str(path), "--window", "28d",
                          "--target", "cache", "--json"], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert one.returncode == 0, one.stderr
    (only,) = [orjson.loads(line) for line in one.stdout.splitlines()]
    assert (only["target"], only["window"]) == ("cache", "28d")
    assert only["samples"] == _expected(samples["cache"], only["window_start"], only["window_end"])[0]

    bad = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "slo", "--config", str(path), "--window",
                          "30x"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "invalid window '30x'" in bad.stderr


def test_latency_page_seven_days_and_custom_range(nine_days, open_page):
    path, samples, now = nine_days
    at = open_page(path, "latency", state={"latency_window": "7 d"})
    assert "hour and day summaries" in "\n".join(c.value for c in at.caption)
    table = at.dataframe[1].value.set_index("target")
    start = int((now - 7 * 86_400) // HOUR) * HOUR
    for name in TARGETS:
        count, down, p95 = _expected(samples[name], start, now)
        assert (table.loc[name, "samples"], table.loc[name, "down"]) == (count, down)
        assert abs(table.loc[name, "p95 ms"] / p95 - 1) < rollups.HIST_ERROR_PCT / 100
        assert {"burn 1h", "burn 6h", "burn 3d"} <= set(table.columns)
    kinds = at.dataframe[0].value.set_index("kind")
    for name, kind in TARGETS.items():  # one target per kind: the kind's budget is the target's
        assert kinds.loc[kind, "budget left %"] == table.loc[name, "budget left %"]

    # a custom range of whole UTC days, the last one included
    from datetime import UTC, datetime, timedelta

    first = datetime.fromtimestamp(now, UTC).date() - timedelta(days=6)
    last = first + timedelta(days=2)
    at = open_page(path, "latency", state={"latency_window": "custom", "latency_range": (first, last)})
    table = at.dataframe[1].value.set_index("target")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    for name in TARGETS:
        count, down, _p95 = _expected(samples[name], start, start + 3 * 86_400 - 1)
        assert (table.loc[name, "samples"], table.loc[name, "down"]) == (count, down)


def test_radar_fitness_over_thirty_days_from_summaries(nine_days):
    path, samples, now = nine_days
    out = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "radar", "--config", str(path), "--json"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in map(orjson.loads, out.stdout.splitlines())}
    for component, target in (("PostgreSQL", "orders-db"), ("Redis", "cache")):
        row = rows[component]
        count, down, p95 = _expected(samples[target], now - 30 * 86_400, now)
        assert row["fitness_window_h"] == 720.0
        assert row["samples_30d"] == count, "nine days of samples, most of them only in the summaries"
        assert row["availability_30d_pct"] == pytest.approx(100 * (count - down) / count, abs=1e-4)
        assert abs(row["p95_30d_ms"] / p95 - 1) < rollups.HIST_ERROR_PCT / 100
