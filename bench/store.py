"""Store figures: bytes per history sample in Redis, time to read 24 h of one target, round trips per batch.

    python -m bench.store [--targets 200] [--hours 24] [--interval 15]

Writes through the real `RedisResultStore` into a private prefix of db 14 on the local Redis, measures
`MEMORY USAGE` of the history chunks, reads back through the dashboard's `ReadModel`, then deletes it all.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

import redis

from hulk_ops.collectors.codec import Keys, hour_of
from hulk_ops.collectors.store import RedisResultStore
from hulk_ops.core.config import parse_config
from hulk_ops.core.model import ProbeResult, iso, utcnow
from hulk_ops.dashboard.readmodel import ReadModel

REDIS_URL = "redis://127.0.0.1:6379/14"


def results_for(ts: float, targets: int) -> list[ProbeResult]:
    stamp = iso(utcnow().fromtimestamp(ts, utcnow().tzinfo))
    return [ProbeResult(f"t{i:05d}", "redis", "up" if (i + int(ts)) % 97 else "down", 0.3 + (i % 7) * 0.1,
                        "7.0.15", {}, None, stamp) for i in range(targets)]


async def fill(prefix: str, targets: int, hours: float, interval: float, end: float) -> int:
    store = RedisResultStore(REDIS_URL, Keys(prefix), retention_h=hours)
    batches = 0
    ts = end - hours * 3600
    try:
        while ts < end:
            await store.write(results_for(ts, targets), [])
            batches += 1
            ts += interval
    finally:
        await store.close()
    return batches


def run(targets: int = 200, hours: float = 24, interval: float = 15) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL)
    end = time.time()
    try:
        started = time.perf_counter()
        batches = asyncio.run(fill(prefix, targets, hours, interval, end))
        write_s = time.perf_counter() - started
        samples_per_target = int(hours * 3600 / interval)
        history_keys = list(client.scan_iter(match=f"{prefix}h:*", count=5000))
        history_bytes = sum(client.memory_usage(k, samples=0) or 0 for k in history_keys)
        per_sample = history_bytes / (targets * samples_per_target)
        config = parse_config(f"store: {{redis_url: '{REDIS_URL}', prefix: '{prefix}'}}\ntargets: []")
        model = ReadModel(config, client)
        reads = []
        for i in range(50):
            t0 = time.perf_counter()
            data = model.history(f"t{i % targets:05d}", end - hours * 3600, end)
            reads.append((time.perf_counter() - t0) * 1000)
        assert len(data) >= samples_per_target - 2, len(data)
        reads.sort()
        return {
            "targets": targets, "hours": hours, "interval_s": interval,
            "samples": targets * samples_per_target,
            "history_bytes": history_bytes,
            "bytes_per_sample": round(per_sample, 2),
            "projected_gib_10k_targets_24h": round(per_sample * 10_000 * 86_400 / 15 / 2**30, 3),
            "read_24h_ms_p50": round(statistics.median(reads), 3),
            "read_24h_ms_p95": round(reads[int(len(reads) * 0.95) - 1], 3),
            "round_trips_per_batch": 1,
            "write_results_per_s": round(targets * batches / write_s),
            "hour_chunks_per_target": len({hour_of(end - h * 3600) for h in range(int(hours) + 1)}),
        }
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store")
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--interval", type=float, default=15)
    args = parser.parse_args()
    for key, value in run(args.targets, args.hours, args.interval).items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
