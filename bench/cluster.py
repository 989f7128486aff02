"""Store on a Redis Cluster: what the collector's batch writes and the pages' cross-target reads cost there.

    python -m bench.cluster [--batches 200] [--runs 3] [--json FILE]

1. Batch writes through the real `RedisResultStore` (500 results per batch, as the writer sends them): to a lone
   private redis-server (one MULTI/EXEC per batch), and to a private three-master Redis Cluster (one MULTI/EXEC
   per slot, the parts of each master in one pipeline), and to one whose masters each have a replica (every
   master's pipeline then waits for its replica: WAIT). Wall time and the process's CPU per result, same run.
2. The pages' cross-target read: 1 and 24 hours of history chunks of the 500 targets (`ReadModel.history_blobs`, one
   MGET on one Redis, one MGET per slot pipelined per node on the cluster).
Everything runs on loopback in a temporary directory and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.failover import BATCH, _results, _write_batches
from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.store import RedisResultStore
from hulk_ops.core.config import parse_config
from hulk_ops.dashboard.readmodel import ReadModel
from sandbox.redis_ha import ClusterGroup
from sandbox.services import PrivateRedis


def _writes(store: RedisResultStore, batches: int) -> dict[str, float]:
    wall, cpu = asyncio.run(_write_batches(store, batches))
    n = batches * BATCH
    return {"results_per_s": round(n / wall), "us_wall_per_result": round(wall / n * 1e6, 2),
            "us_cpu_per_result": round(cpu / n * 1e6, 2)}


def _read_ms(store_yaml: str, prefix: str, hours: int, reads: int = 10) -> float:
    """Median ms of one read of the last `hours` hours of chunks of the 500 targets (the older hours are empty
    here: the keys are still asked for, as a page asks for them)."""
    model = ReadModel(parse_config(f"store: {{{store_yaml}, prefix: '{prefix}'}}"))
    names = [r.target for r in _results(BATCH, time.time())]
    now = int(time.time() // 3600)
    window = list(range(now - hours + 1, now + 1))
    model.history_blobs(names, window)  # connections, slot map
    took = []
    for _ in range(reads):
        started = time.perf_counter()
        blobs = model.history_blobs(names, window)
        took.append(time.perf_counter() - started)
        if sum(1 for b in blobs if b) != BATCH:
            raise RuntimeError("the read did not find every target's chunk")
    model.redis.close()
    return round(statistics.median(took) * 1000, 2)


def run(quick: bool = False, runs: int = 3, batches: int = 200) -> dict[str, Any]:
    runs, batches = (1, 40) if quick else (runs, batches)
    with tempfile.TemporaryDirectory(prefix="hulk-cluster-") as tmp:
        work = Path(tmp)
        (work / "single").mkdir()
        single = PrivateRedis(work / "single")
        single.start()
        cluster = ClusterGroup(work / "cluster")
        (work / "cluster").mkdir()
        cluster.start()
        replicated = ClusterGroup(work / "replicated", replicas=1)
        (work / "replicated").mkdir()
        replicated.start()
        try:
            out: dict[str, Any] = {"batch": BATCH, "runs": []}
            for i in range(runs):
                out["runs"].append({
                    "one Redis": _writes(RedisResultStore(single.url, Keys(f"b{i}:")), batches),
                    "three-master cluster": _writes(RedisResultStore(cluster.url, Keys(f"b{i}:"), cluster=True),
                                                    batches),
                    "three masters, a replica each acknowledging": _writes(
                        RedisResultStore(replicated.url, Keys(f"b{i}:"), cluster=True), batches),
                })
            for hours in (1, 24):
                out[f"read_500_targets_{hours}h_ms"] = {
                    "one Redis": _read_ms(f"redis_url: '{single.url}'", "b0:", hours),
                    "three-master cluster": _read_ms(f"cluster_url: '{cluster.url}'", "b0:", hours)}
        finally:
            single.stop()
            cluster.stop()
            replicated.stop()
    out["median"] = {name: {field: statistics.median(r[name][field] for r in out["runs"])
                            for field in out["runs"][0][name]} for name in out["runs"][0]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.quick, args.runs, args.batches)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
