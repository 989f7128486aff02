"""Store behind Redis Sentinel: what acknowledged writes cost, and how long a killed master stops the writes.

    python -m bench.failover [--runs 3] [--batches 200] [--json FILE]

1. Batch writes through the real `RedisResultStore` (500 results per MULTI/EXEC, as the writer sends them): to a
   lone private redis-server, and to a Sentinel group's master with `min_replicas: 1` (each batch then also waits
   for the replica: `WAIT`). Wall time and the process's CPU per result, same run, same machine.
2. Failover: a real `hulk-ops collect` (40 tcp targets every 0.25 s) writes through the sentinels; the master is
   SIGKILLed; measured are the time until the sentinels name a new master and until the first batch lands on it.
Everything runs on loopback in a temporary directory and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.store import RedisResultStore
from hulk_ops.core.config import SentinelSettings
from hulk_ops.core.model import ProbeResult, iso, utcnow
from sandbox.redis_ha import MASTER_NAME, SentinelGroup
from sandbox.services import PrivateRedis

BATCH = 500


def _results(n: int, ts: float) -> list[ProbeResult]:
    stamp = iso(utcnow().fromtimestamp(ts, utcnow().tzinfo))
    return [ProbeResult(f"t{i:04d}", "tcp", "up", 0.4, None, {}, None, stamp) for i in range(n)]


async def _write_batches(store: RedisResultStore, batches: int) -> tuple[float, float]:
    """Warm up (connections, scripts), then time `batches` writes; closes the store."""
    results = _results(BATCH, time.time())
    try:
        for seq in range(1, 6):
            await store.write(results, [], batch=("warm", seq))
        wall, cpu = time.perf_counter(), time.process_time()
        for seq in range(1, batches + 1):
            await store.write(results, [], batch=("bench", seq))
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await store.close()


def throughput(workdir: Path, batches: int) -> dict[str, Any]:
    single = PrivateRedis(workdir / "single")
    (workdir / "single").mkdir()
    single.start()
    group = SentinelGroup(workdir / "group")
    (workdir / "group").mkdir()
    group.start()
    try:
        out: dict[str, Any] = {}
        sentinel = SentinelSettings(master=MASTER_NAME, addresses=group.addresses, min_replicas=1)
        for name, store in (("one Redis", RedisResultStore(single.url, Keys("b:"))),
                            ("Sentinel, 1 replica acknowledging", RedisResultStore("", Keys("b:"), sentinel=sentinel))):
            wall, cpu = asyncio.run(_write_batches(store, batches))
            n = batches * BATCH
            out[name] = {"results": n, "results_per_s": round(n / wall), "us_wall_per_result": round(wall / n * 1e6, 2),
                         "us_cpu_per_result": round(cpu / n * 1e6, 2)}
        return out
    finally:
        single.stop()
        group.stop()


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return sock, int(sock.getsockname()[1])


def failover_once(workdir: Path) -> dict[str, float]:
    workdir.mkdir()
    group = SentinelGroup(workdir)
    group.start()
    sock, port = _listener()
    config = workdir / "c.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"prefix": "f:", "sentinel": {"master": MASTER_NAME, "addresses": group.addresses}},
        "collector": {"breaker": {"failures": 100_000}, "flush_interval_s": 0.05},
        "targets": [{"name": f"t{i}", "kind": "tcp", "url": f"tcp://127.0.0.1:{port}", "interval_s": 0.25,
                     "timeout_s": 0.2} for i in range(40)]}))
    log = open(workdir / "collector.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "collect", "--config", str(config), "--metrics-port",
                             "0"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    keys = Keys("f:")
    try:
        with group.client(group.master()) as c:
            deadline = time.monotonic() + 30
            while c.hlen(keys.latest) < 40 and time.monotonic() < deadline:
                time.sleep(0.1)
        time.sleep(2)
        old = group.kill_master()
        killed = time.monotonic()
        new = group.wait_failover(old)
        promoted = time.monotonic() - killed
        with group.client(new) as c:
            before = c.get(keys.last_write)
            deadline = time.monotonic() + 30
            while c.get(keys.last_write) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            first_write = time.monotonic() - killed
        time.sleep(3)  # the backlog of the switch drains, then a normal stop
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        with group.client(new) as c:
            beat = orjson.loads(c.hget(keys.collectors, c.hkeys(keys.collectors)[0]))
            stored = sum(c.strlen(k) // 7 for k in c.scan_iter(match="f:h:*"))
        if not beat.get("stopped"):
            raise RuntimeError(f"the collector's last heartbeat is not its stop: {beat}")
        return {"promoted_s": round(promoted, 2), "first_write_s": round(first_write, 2),
                "probes": beat["probes_done"], "stored": stored}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        sock.close()
        group.stop()


def run(quick: bool = False, runs: int = 3, batches: int = 200) -> dict[str, Any]:
    runs, batches = (1, 50) if quick else (runs, batches)
    with tempfile.TemporaryDirectory(prefix="hulk-failover-") as tmp:
        work = Path(tmp)
        report: dict[str, Any] = {"batch": BATCH, "throughput": throughput(work, batches)}
        report["failover"] = [failover_once(work / f"run{i}") for i in range(runs)]
    fo = report["failover"]
    report["failover_summary"] = {
        "promoted_s_median": statistics.median(r["promoted_s"] for r in fo),
        "first_write_s_median": statistics.median(r["first_write_s"] for r in fo),
        "lost_or_twice": sum(abs(r["probes"] - r["stored"]) for r in fo)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.splitlines()[0])
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
