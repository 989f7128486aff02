"""One collector at scale: `--targets` loopback Redis targets at `--interval`, for `--cycles` measured cycles.

    python -m bench.collector [--targets 10000] [--interval 15] [--cycles 3] [--baseline-targets 100] [--quick]

A private redis-server (loopback, its own port, maxclients above the target count) is every target, and a
second one is the store, so the shared servers are left alone. One `hulk-ops collect` (a subprocess, uvloop,
the real scheduler, probes, pooled clients and store writes) runs them all. After a warm-up (the first cycle
opens one connection per target, then one more cycle), over `--cycles` intervals it measures:

- every cycle inside its interval: per target, the probe start times kept in the store's history (0.1 s
  resolution); a gap between two probes longer than interval + jitter + 0.5 s is a missed cycle;
- start jitter: how far each probe started from its planned start (|actual - planned|, early or late: a
  run starts at the wake-up grid point nearest its plan; the plan includes the deliberate jitter), summarised
  in every heartbeat (p50 / p99 / max of the probes since the previous one); the figure is the worst
  heartbeat's p99 and the max;
- RSS (VmRSS and its peak VmHWM) and mean CPU (utime + stime over the window, in cores and per probe).

Then a second collector with `--baseline-targets` (100) targets runs the same way for one cycle: the memory a
target costs is `rss_per_target_kb` = (RSS at `--targets` - RSS at the baseline) / the difference in targets,
which leaves out what every collector holds whatever its size (interpreter, imports, metrics server).

`HULK_BENCH_COLLECTOR_SRC=/path/to/other/checkout` runs that checkout's collector (same Python, libraries and
targets; as in bench/probe.py): a before/after comparison, e.g. of `git archive main | tar -x -C /tmp/main`.

The soft fd limit is raised to the hard one (one socket per target on each side); `--targets` is capped to
fit it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
import yaml

from bench.probe import cpu_seconds
from hulk_ops.collectors.codec import Keys, decode_samples, hours_between
from sandbox.services import find_binary, free_port, stop_process, wait_port

BUDGET_JITTER_MS, BUDGET_RSS_MB = 100.0, 300.0
JITTER_PCT = 5.0
SRC_ENV = "HULK_BENCH_COLLECTOR_SRC"  # another checkout's collector (before/after), as in bench/probe.py


def status_kb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def start_redis(workdir: Path, name: str, clients: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = open(workdir / f"{name}.log", "ab")
    proc = subprocess.Popen([find_binary("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--maxclients", str(clients), "--dir", str(workdir)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, 15, proc, f"redis-server ({name})")
    return proc, port


def heartbeat(client: redis.Redis, prefix: str) -> dict[str, Any] | None:
    raw = client.hgetall(Keys(prefix).collectors)
    return orjson.loads(next(iter(raw.values()))) if raw else None


def run(quick: bool = False, targets: int | None = None, interval: float | None = None,
        cycles: int | None = None, baseline_targets: int = 100) -> dict[str, Any]:
    targets = targets or (2000 if quick else 10_000)
    interval = interval or (5.0 if quick else 15.0)
    cycles = cycles or 3
    load_before = round(os.getloadavg()[0], 2)
    figures = measure(targets, interval, cycles)
    if 0 < baseline_targets < figures["targets"]:
        small = measure(baseline_targets, interval, 1)
        figures["baseline"] = {k: small[k] for k in ("targets", "cycles", "rss_mb", "rss_peak_mb",
                                                      "targets_missing_a_cycle")}
        figures["rss_per_target_kb"] = round((figures["rss_mb"] - small["rss_mb"]) * 1024
                                             / (figures["targets"] - small["targets"]), 1)
    figures["collector_src"] = os.environ.get(SRC_ENV) or "this checkout"
    figures["load_before"], figures["load_after"] = load_before, round(os.getloadavg()[0], 2)
    return figures


def measure(targets: int, interval: float, cycles: int) -> dict[str, Any]:
    """One collector with `targets` targets, measured over `cycles` intervals after its warm-up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    fit = max(100, (hard - 200) if hard != resource.RLIM_INFINITY else targets)
    capped = targets > fit
    targets = min(targets, fit)
    workdir = Path(tempfile.mkdtemp(prefix="hulk-bench-collector-"))
    procs: list[subprocess.Popen[bytes]] = []
    prefix = "bench:"
    figures: dict[str, Any] = {"targets": targets, "interval_s": interval, "cycles": cycles, "kind": "redis",
                               "jitter_pct": JITTER_PCT, "fd_limit": hard, "targets_capped_to_fd_limit": capped}
    try:
        target_proc, target_port = start_redis(workdir, "targets", targets + 500)
        store_proc, store_port = start_redis(workdir, "store", 1000)
        procs += [target_proc, store_proc]
        url = f"redis://127.0.0.1:{target_port}/0"
        store_url = f"redis://127.0.0.1:{store_port}/0"
        config = {"store": {"redis_url": store_url, "prefix": prefix},
                  "collector": {"concurrency": 256, "jitter_pct": JITTER_PCT},
                  "targets": [{"name": f"t{i:05d}", "kind": "redis", "url": url, "interval_s": interval,
                               "timeout_s": min(5.0, interval)} for i in range(targets)]}
        path = workdir / "collector.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        metrics_port = free_port()
        log = open(workdir / "collector.log", "ab")
        started = time.monotonic()
        src = os.environ.get(SRC_ENV)
        proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "collect", "--config", str(path),
                                 "--metrics-port", str(metrics_port), "--log-level", "WARNING"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=dict(os.environ, PYTHONPATH=src) if src else None, cwd=src)
        procs.append(proc)
        store = redis.Redis.from_url(store_url)
        # warm-up: every target probed once (one connection each), then one more interval
        deadline = time.monotonic() + 6 * interval + 60
        while True:
            beat = heartbeat(store, prefix)
            if beat and beat["probes_done"] >= targets:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"collector not through its first cycle (see {workdir}/collector.log)")
            time.sleep(0.5)
        figures["first_cycle_s"] = round(time.monotonic() - started, 1)
        time.sleep(interval)
        t_start, cpu0, done0 = time.time(), cpu_seconds(proc.pid), heartbeat(store, prefix)["probes_done"]
        beats: list[dict[str, Any]] = []
        last_at = 0.0
        window_end = time.monotonic() + cycles * interval
        while time.monotonic() < window_end:
            time.sleep(1.0)
            beat = heartbeat(store, prefix)
            if beat and beat["heartbeat_at"] != last_at and beat["heartbeat_at"] > t_start + 0.5:
                last_at = beat["heartbeat_at"]
                beats.append(beat)
        t_end, cpu1 = time.time(), cpu_seconds(proc.pid)
        mem = status_kb(proc.pid)
        # the probes that landed in the window, from the stored history (through the last flush)
        time.sleep(1.0)
        done1 = heartbeat(store, prefix)["probes_done"]
        gaps, missed, counts = check_cycles(store, Keys(prefix), targets, interval, t_start, t_end)
        p99s = [b["start_lag_ms_p99"] for b in beats if b.get("start_lag_ms_p99") is not None]
        maxes = [b["start_lag_ms_max"] for b in beats if b.get("start_lag_ms_max") is not None]
        p50s = [b["start_lag_ms_p50"] for b in beats if b.get("start_lag_ms_p50") is not None]
        wall = t_end - t_start
        probes = max(1, done1 - done0)
        figures.update(
            window_s=round(wall, 1), probes=done1 - done0,
            probes_per_s=round((done1 - done0) / wall, 1),
            targets_probed_every_cycle=targets - missed, targets_missing_a_cycle=missed,
            max_gap_s=round(max(gaps), 2) if gaps else None, allowed_gap_s=round(allowed_gap(interval), 2),
            probes_per_target_min=int(counts.min()) if counts.size else 0,
            probes_per_target_max=int(counts.max()) if counts.size else 0,
            heartbeats=len(beats), start_lag_ms_p50=max(p50s) if p50s else None,
            start_lag_ms_p99=max(p99s) if p99s else None, start_lag_ms_max=max(maxes) if maxes else None,
            rss_mb=round(mem.get("VmRSS", 0), 1), rss_peak_mb=round(mem.get("VmHWM", 0), 1),
            cpu_cores=round((cpu1 - cpu0) / wall, 3), cpu_ms_per_probe=round(1000 * (cpu1 - cpu0) / probes, 3),
            skipped=skipped(metrics_port), store_dropped=heartbeat(store, prefix).get("dropped", 0),
        )
        figures["budget"] = {
            "every_cycle_in_interval": missed == 0,
            "p99_jitter_under_100ms": figures["start_lag_ms_p99"] is not None
            and figures["start_lag_ms_p99"] < BUDGET_JITTER_MS,
            "rss_under_300mb": figures["rss_peak_mb"] < BUDGET_RSS_MB,
        }
        figures["budget_met"] = all(figures["budget"].values())
        store.close()
    finally:
        for p in reversed(procs):
            stop_process(p)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def skipped(port: int) -> int | None:
    """Runs skipped because the previous run of the target still ran (hulk_ops_probes_skipped_total)."""
    from bench.probe import metric_sum, scrape

    try:
        return int(metric_sum(scrape(port, timeout=60), "hulk_ops_probes_skipped_total"))
    except OSError:
        return None


def allowed_gap(interval: float) -> float:
    return interval * (1 + JITTER_PCT / 100) + 0.5


def check_cycles(client: redis.Redis, keys: Keys, targets: int, interval: float, start: float,
                 end: float) -> tuple[list[float], int, np.ndarray]:
    """Per target: the largest gap between probe starts in [start, end] (window edges included)."""
    names = [f"t{i:05d}" for i in range(targets)]
    hours = hours_between(start - interval, end)
    gaps: list[float] = []
    counts = np.zeros(targets, dtype=np.int64)
    missed = 0
    limit = allowed_gap(interval)
    for lo in range(0, targets, 1000):
        chunk = names[lo:lo + 1000]
        blobs = client.mget([keys.history(name, h) for name in chunk for h in hours])
        for j in range(len(chunk)):
            mine = blobs[j * len(hours):(j + 1) * len(hours)]
            ts = decode_samples(list(zip(hours, mine, strict=True)), start - interval * 1.2, end)["ts"]
            inside = ts[ts >= start]
            counts[lo + j] = inside.size
            edges = np.concatenate(([start], ts[ts >= start], [end])) if ts.size else np.array([start, end])
            before = ts[ts < start]
            if before.size:  # the gap across the window's start counts from the last probe before it
                edges[0] = before[-1]
            gap = float(np.diff(edges).max())
            gaps.append(gap)
            if gap > limit:
                missed += 1
    return gaps, missed, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 targets at 5 s")
    parser.add_argument("--targets", type=int, default=None)
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--cycles", type=int, default=None)
    parser.add_argument("--baseline-targets", type=int, default=100,
                        help="targets of the second, small collector (RSS per target); 0: none")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick, args.targets, args.interval, args.cycles, args.baseline_targets), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
