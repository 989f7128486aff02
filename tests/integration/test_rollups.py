"""The long-range tier on a real Redis: hours and days are summarised from the raw chunks the collector's
store wrote, each target-hour exactly once whoever writes it (two replicas at once, a restart), a closed day
is compacted without losing anything, and hours missed meanwhile are rebuilt when the job runs again, but
only once every live collector's backlog before them has landed."""

from __future__ import annotations

import asyncio
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
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_outage"]
DAY = rollups.DAY
TARGETS = ("cache-a", "cache-b", "cache-c")


def _config(write_config, store_redis_url: str, store_prefix: str):
    return load_config(write_config(
        [{"name": n, "kind": "redis", "url": "redis://127.0.0.1:1", "interval_s": 60} for n in TARGETS],
        store={"redis_url": store_redis_url, "prefix": store_prefix, "retention_h": 72}))


def _seed(config, hours: range, rng: np.random.Generator) -> dict:
    """60 samples per target and hour: lognormal latencies, a down sample every 25th, a memory metric."""
    raw: dict = {n: {"lat": [], "down": 0, "mem": {}} for n in TARGETS}
    results = []
    for h in hours:
        for i in range(60):
            ts = h * HOUR + i * 60 + 1.5
            for k, name in enumerate(TARGETS):
                down = (i + k) % 25 == 0
                lat = float(rng.lognormal(np.log(2 + k), 0.4))
                mem = float(1_000_000 + 1000 * i + k)
                results.append(result(name, "redis", "down" if down else "up", ts, None if down else lat,
                                      metrics={"used_memory_bytes": mem}))
                raw[name]["down"] += down
                if not down:
                    raw[name]["lat"].append(lat)
                raw[name]["mem"].setdefault(h, []).append(mem)
    seed(config, results)
    return raw


def _job(config, client) -> RollupJob:
    return RollupJob(client, Keys(config.store.prefix), config.store.rollups, config.store.retention_h,
                     lambda: list(TARGETS), rescan_h=72)


def test_hours_and_days_summarised_once_each_and_compacted(write_config, store_redis_url, store_prefix):
    config = _config(write_config, store_redis_url, store_prefix)
    today = int(time.time() // DAY)
    yesterday = today - 1
    hours = range(yesterday * 24, today * 24 + 3)  # yesterday, and today's first three hours
    raw = _seed(config, hours, np.random.default_rng(7))
    now = today * DAY + 3 * HOUR + 600  # 10 minutes after today's third hour ended
    keys = Keys(config.store.prefix)

    async def replicas() -> list:
        clients = [aioredis.Redis.from_url(store_redis_url) for _ in range(3)]
        try:
            first, second = _job(config, clients[0]), _job(config, clients[1])
            await asyncio.gather(first.once(now), second.once(now))  # two replicas at once
            restarted = _job(config, clients[2])
            await restarted.once(now)  # a restart: finds everything done
            return [first.stats, second.stats, restarted.stats]
        finally:
            for c in clients:
                await c.aclose()

    stats = asyncio.run(replicas())
    assert stats[0].hours_written + stats[1].hours_written == len(TARGETS) * len(hours)
    assert stats[2].hours_written == 0 and stats[2].days_written == 0
    assert stats[0].days_written + stats[1].days_written == len(TARGETS)

    sync = redis.Redis.from_url(store_redis_url)
    try:
        names = [n.decode() for n in sync.lrange(keys.rollup_names("cache-a"), 0, -1)]
        assert names == ["used_memory_bytes"]
        for name in TARGETS:
            value = sync.get(keys.rollup_hourly(name, yesterday))
            assert value[4] == 1, "a closed day's hours are compacted"
            summaries = rollups.decode(value)
            assert sorted(s.slot for s in summaries) == list(range(24))
            assert all(s.samples == 60 for s in summaries)
            today_summaries = rollups.decode(sync.get(keys.rollup_hourly(name, today)))
            assert sorted(s.slot for s in today_summaries) == [0, 1, 2]
            month, slot = rollups.month_of_day(yesterday)
            (day,) = rollups.decode(sync.get(keys.rollup_daily(name, month)))
            assert day.slot == slot
            yesterday_down = sum(int(s.counts[2]) for s in summaries)
            assert int(day.counts[2]) == yesterday_down and day.samples == 24 * 60
            # the hour summaries' histograms hold every measured sample; percentiles within the stated error
            hist, counts = rollups.totals([value, sync.get(keys.rollup_hourly(name, today))], [0, 0], 1)
            assert int(counts.sum()) == len(hours) * 60 and int(counts[0, 2]) == raw[name]["down"]
            p95 = rollups.hist_quantiles(hist, [0.95])[0, 0]
            exact = float(np.percentile(raw[name]["lat"], 95))
            assert abs(p95 - exact) / exact < rollups.HIST_ERROR_PCT / 100
            first_hour = next(s for s in summaries if s.slot == 0)
            mem = raw[name]["mem"][yesterday * 24]
            stats_ = first_hour.metrics[0]
            assert stats_.min == pytest.approx(min(mem), rel=2e-5)
            assert stats_.max == pytest.approx(max(mem), rel=2e-5)
            assert stats_.last == pytest.approx(mem[-1], rel=2e-5)
            assert stats_.mean == pytest.approx(np.mean(mem), rel=2e-5)
            assert day.metrics[0].max == pytest.approx(max(mem), rel=2e-5)
            ttl = sync.ttl(keys.rollup_hourly(name, yesterday))
            assert 0 < ttl <= (config.store.rollups.hourly_days + 1) * DAY
    finally:
        sync.close()


def test_missed_hours_are_rebuilt_once_backlogs_landed(write_config, store_redis_url, store_prefix):
    config = _config(write_config, store_redis_url, store_prefix)
    base = int(time.time() // HOUR) - 6
    raw = _seed(config, range(base, base + 4), np.random.default_rng(3))
    keys = Keys(config.store.prefix)
    sync = redis.Redis.from_url(store_redis_url)

    async def run(now: float) -> int:
        client = aioredis.Redis.from_url(store_redis_url)
        try:
            job = _job(config, client)
            await job.once(now)
            return job.stats.hours_written
        finally:
            await client.aclose()

    try:
        # only the first hour is closed at first
        assert asyncio.run(run((base + 1) * HOUR + 120)) == len(TARGETS)
        # the store was unreachable for the next hours (no run); a live collector still holds results of the
        # fourth hour, observed before its end
        heartbeat = {"heartbeat_at": time.time(), "oldest_buffered_at": (base + 3) * HOUR + 30, "stopped": False}
        sync.hset(keys.collectors, "replica-late", orjson.dumps(heartbeat))
        assert asyncio.run(run((base + 4) * HOUR + 120)) == 2 * len(TARGETS), "hours 2 and 3 rebuilt, 4 waits"
        heartbeat["oldest_buffered_at"] = None
        sync.hset(keys.collectors, "replica-late", orjson.dumps(heartbeat))
        assert asyncio.run(run((base + 4) * HOUR + 120)) == len(TARGETS), "its backlog landed: hour 4 now"
        for name in TARGETS:
            values = [sync.get(keys.rollup_hourly(name, d)) for d in sorted({h // 24 for h in range(base, base + 4)})]
            slots = [(s.slot) for v in values for s in rollups.decode(v)]
            assert len(slots) == 4 and len(set(slots)) == 4
            _hist, counts = rollups.totals(values, [0] * len(values), 1)
            assert int(counts.sum()) == 4 * 60 and int(counts[0, 2]) == raw[name]["down"]
    finally:
        sync.close()


def test_a_collector_killed_mid_hour_and_restarted_is_summarised_once_per_sample(
        write_config, store_redis_url, store_prefix, redis_server, collector_process):
    """A real `hulk-ops collect` is SIGKILLed mid-hour and started again; when the hour closes, every target's
    summary counts exactly the samples its raw chunk holds, and a second pass (another replica) adds nothing."""
    from hulk_ops.collectors.codec import SAMPLE_DTYPE

    path = write_config([{"name": n, "kind": "redis", "url": redis_server.url, "interval_s": 0.2} for n in TARGETS],
                        store={"redis_url": store_redis_url, "prefix": store_prefix})
    config = load_config(path)
    keys = Keys(store_prefix)
    sync = redis.Redis.from_url(store_redis_url)

    def stored() -> int:
        return sum(sync.strlen(k) for k in sync.scan_iter(match=f"{store_prefix}h:*", count=1000))

    try:
        first = collector_process(path)
        assert wait_for(lambda: stored() >= 7 * 15 * len(TARGETS), 30)
        first.kill()  # SIGKILL: what its writer still buffered is lost, what landed stays
        second = collector_process(path)
        before = stored()
        assert wait_for(lambda: stored() >= before + 7 * 15 * len(TARGETS), 30)
        second.terminate()
        hours = sorted({int(k.decode().rsplit(":", 1)[1]) for k in sync.scan_iter(match=f"{store_prefix}h:*")})
        raw = {n: sum(len(sync.get(keys.history(n, h)) or b"") // SAMPLE_DTYPE.itemsize for h in hours)
               for n in TARGETS}
        later = (hours[-1] + 1) * HOUR + 120  # the last hour closed, both collectors' heartbeats long stale

        async def summarise() -> list[int]:
            client = aioredis.Redis.from_url(store_redis_url)
            try:
                jobs = [_job(config, client), _job(config, client)]
                for job in jobs:
                    await job.once(later)
                return [job.stats.hours_written for job in jobs]
            finally:
                await client.aclose()

        written = asyncio.run(summarise())
        assert written[1] == 0 and written[0] >= len(TARGETS)  # (an hour that closed meanwhile: the collector did it)
        for name in TARGETS:
            values = [sync.get(keys.rollup_hourly(name, d)) for d in sorted({h // 24 for h in hours})]
            _hist, counts = rollups.totals(values, [0] * len(values), 1)
            assert int(counts.sum()) == raw[name] > 0, name
    finally:
        sync.close()
