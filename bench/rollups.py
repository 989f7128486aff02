"""`python -m bench.rollups`: what the long-range tier costs (hulk_ops/collectors/rollups.py).

- storage: `--storage-targets` Redis-kind targets (default 100, 5 tracked metrics each, a probe every
  15 s) get the full default retention, 35 days of hour summaries and 400 days of day summaries, in the
  layout the collectors' rollup job writes (closed days and months compacted); `MEMORY USAGE` of every
  rollup key, scaled to 1,000 targets. Budget: <= 100 MB per 1,000 targets.
- page: `--targets` targets of the bench fleet (default 2,000, bench/fleet.py) get 31 days of hour and
  day summaries and one hour of raw history; the Latency & SLOs page at "30 d" is rendered with Streamlit's
  AppTest after the server's warm-up, as bench/pages.py does. Budget: p95 <= 300 ms server-side.
- report: `hulk-ops report slo --window 30d --json` on the same store, in a fresh process each time.
  Budget: <= 2 s.
- import: `hulk-ops history import` of `--import-lines` generated lines (default 1,000,000: 100 Redis targets,
  one sample every 15 s) and of a fifth of them, each in a fresh process: time and peak RSS (bounded memory: the
  peak does not grow with the file).

The summaries are synthetic (lognormal latencies around a per-target median, a down sample now and then,
random-walk metrics) but built and encoded by the same functions the rollup job uses. Keys are deleted
afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis
import yaml

from bench.fleet import fleet_targets, seed_fleet
from hulk_ops.collectors import rollups
from hulk_ops.collectors.codec import HOUR, Keys

DAY = rollups.DAY
STORAGE_BUDGET_MB = 100.0
PAGE_BUDGET_MS = 300.0
REPORT_BUDGET_S = 2.0
METRICS = ("used_memory_bytes", "memory_used_pct", "connected_clients", "ops_per_sec", "keyspace.db0.keys")


def _hour_summaries(n: int, hour: int, rng: np.random.Generator, medians: np.ndarray, walk: np.ndarray,
                    samples: int = 240) -> list[rollups.Summary]:
    lat = rng.lognormal(np.log(medians)[:, None], 0.35, (n, samples))
    status = (rng.random((n, samples)) < 0.002).astype(np.uint8) * 2
    lat[status == 2] = np.nan
    walk += rng.normal(0, 0.01, walk.shape)
    out = []
    for i in range(n):
        metrics = {m: np.full(samples // 4, 1e6 * (1 + m) * (1 + walk[i, m])) + rng.normal(0, 10, samples // 4)
                   for m in range(len(METRICS))}
        metrics[2] = np.round(metrics[2] / 1e6)  # a small integer gauge (clients), often constant
        out.append(rollups.summarise(hour % 24, status[i], lat[i], metrics))
    return out


def write_summaries(client: redis.Redis, keys: Keys, names: list[str], hourly_days: int, daily_days: int,
                    now: float, seed: int = 5) -> int:
    """Hour summaries for the last `hourly_days` days (today's hours so far included) and day summaries for
    the last `daily_days` days, laid out and compacted as the rollup job leaves them. Returns bytes encoded."""
    rng = np.random.default_rng(seed)
    n = len(names)
    medians = rng.uniform(0.3, 40, n)
    walk = np.zeros((n, len(METRICS)))
    today = int(now // DAY)
    current_hour = int(now // HOUR)
    encoded = 0
    pipe = client.pipeline(transaction=False)
    day_summaries: dict[int, list[rollups.Summary]] = {}
    for day in range(today - max(hourly_days, 0), today + 1):
        values = [[] for _ in range(n)]
        by_target: list[list[rollups.Summary]] = [[] for _ in range(n)]
        for hour in range(day * 24, min(day * 24 + 24, current_hour)):
            for i, summary in enumerate(_hour_summaries(n, hour, rng, medians, walk)):
                values[i].append(rollups.encode(summary))
                by_target[i].append(summary)
        for i, name in enumerate(names):
            if not values[i]:
                continue
            mask = sum(1 << s.slot for s in by_target[i])
            value = rollups.HEAD.pack(mask, 0) + b"".join(values[i])
            if day < today:
                value = rollups.compacted(value) or value
            encoded += len(value)
            pipe.set(keys.rollup_hourly(name, day), value, exat=(day + 1 + hourly_days) * DAY)
        if day < today:
            day_summaries[day] = [rollups.merge(rollups.month_of_day(day)[1], parts) for parts in by_target]
        pipe.execute()
    # days before the hourly retention: summarised directly (their hours are gone)
    first_daily = today - daily_days
    months: dict[int, list[list[bytes]]] = {}
    masks: dict[int, list[int]] = {}
    for day in range(first_daily, today):
        month, slot = rollups.month_of_day(day)
        parts = day_summaries.get(day)
        if parts is None:
            parts = []
            for i, hours in enumerate(zip(*[_hour_summaries(n, h, rng, medians, walk, 40) for h in range(24)],
                                          strict=True)):
                merged = rollups.merge(slot, hours)
                merged.counts *= 6  # 24 hours of 240 samples, drawn as 40 per hour to keep the bench quick
                merged.hist *= 6
                parts.append(merged)
                del i
        months.setdefault(month, [[] for _ in range(n)])
        masks.setdefault(month, [0] * n)
        for i, summary in enumerate(parts):
            summary.slot = slot
            months[month][i].append(rollups.encode(summary))
            masks[month][i] |= 1 << slot
    this_month = rollups.month_of_day(today)[0]
    for month, per_target in months.items():
        for i, name in enumerate(names):
            value = rollups.HEAD.pack(masks[month][i], 0) + b"".join(per_target[i])
            if month < this_month:
                value = rollups.compacted(value) or value
            encoded += len(value)
            pipe.set(keys.rollup_daily(name, month), value, exat=(rollups.month_end_day(month) + daily_days) * DAY)
        pipe.execute()
    for name in names:
        pipe.rpush(keys.rollup_names(name), *METRICS)
    pipe.execute()
    return encoded


def memory_mb(client: redis.Redis, prefix: str) -> float:
    total = 0
    for pattern in ("rh:*", "rd:*", "rn:*"):
        for key in client.scan_iter(match=f"{prefix}{pattern}", count=5000):
            total += client.memory_usage(key, samples=0) or 0
    return total / 1e6


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


def storage(redis_url: str, targets: int, say) -> dict:
    client = redis.Redis.from_url(redis_url)
    prefix = f"benchr{uuid.uuid4().hex[:8]}:"
    try:
        started = time.perf_counter()
        names = [f"redis-{i:04d}" for i in range(targets)]
        write_summaries(client, Keys(prefix), names, 35, 400, time.time())
        mb = memory_mb(client, prefix)
        per_1000 = mb * 1000 / targets
        say(f"storage: {targets} targets x (35 d hourly + 400 d daily): {mb:.1f} MB -> {per_1000:.1f} MB per "
            f"1,000 targets (budget {STORAGE_BUDGET_MB:.0f}); {time.perf_counter() - started:.0f} s")
        return {"targets": targets, "mb": round(mb, 2), "mb_per_1000_targets": round(per_1000, 1),
                "budget_mb": STORAGE_BUDGET_MB, "budget_met": per_1000 <= STORAGE_BUDGET_MB}
    finally:
        delete_prefix(client, prefix)
        client.close()


def history_import(redis_url: str, lines: int, say) -> dict:
    """`hulk-ops history import` of `lines` lines and of a fifth of them: wall time and peak RSS of each."""
    import resource

    out: dict = {}
    work = Path(tempfile.mkdtemp(prefix="hulk-import-bench-"))
    prefix = f"benchi{uuid.uuid4().hex[:8]}:"
    targets = 100
    config_path = work / "bench.yaml"
    config_path.write_text(yaml.safe_dump({
        "store": {"redis_url": redis_url, "prefix": prefix, "retention_h": 24},
        "targets": [{"name": f"r{i:03d}", "kind": "redis", "url": "redis://127.0.0.1:6379"} for i in range(targets)]},
        sort_keys=False), encoding="utf-8")
    client = redis.Redis.from_url(redis_url)
    try:
        for count in (lines // 5, lines):
            path = work / f"history-{count}.jsonl"
            per = count // targets
            start = int(time.time()) // 3600 * 3600 - 3600 - per * 15
            with path.open("wb") as f:
                for k in range(per):
                    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + k * 15))
                    for i in range(targets):
                        f.write(json.dumps({
                            "target": f"r{i:03d}", "kind": "redis", "status": "down" if (k + i) % 97 == 0 else "up",
                            "latency_ms": 0.5 + (k % 13) * 0.1, "version": "7.0.15",
                            "metrics": {"used_memory_bytes": 1e6 + k, "connected_clients": 3, "ops_per_sec": k % 50},
                            "error": None, "observed_at": at}).encode() + b"\n")
            t0 = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-m", "hulk_ops", "history", "import", "--config",
                                      str(config_path), str(path)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            _, err = child.communicate(timeout=900)
            wall = time.perf_counter() - t0
            if child.returncode != 0:
                raise RuntimeError(f"history import failed: {err.decode()[-500:]}")
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
            out[str(count)] = {"lines": count, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb, 1)}
            say(f"history import of {count:,} lines: {wall:.1f} s, peak RSS of the children so far {peak_mb:.0f} MB")
            path.unlink()
            delete_prefix(client, prefix)
    finally:
        delete_prefix(client, prefix)
        client.close()
    return out


def page_and_report(redis_url: str, targets: int, runs: int, report_runs: int, say) -> dict:
    from bench.pages import percentile, render_times
    from tests.views_support import touch_latest

    client = redis.Redis.from_url(redis_url)
    prefix = f"benchr{uuid.uuid4().hex[:8]}:"
    config_path = Path(tempfile.mkdtemp(prefix="hulk-rollup-bench-")) / "bench.yaml"
    config_path.write_text(yaml.safe_dump({
        "store": {"redis_url": redis_url, "prefix": prefix, "retention_h": 24},
        "slo": {"availability": 99.9}, "targets": fleet_targets(targets)}, sort_keys=False), encoding="utf-8")
    os.environ["HULK_OPS_CONFIG"] = str(config_path)
    from hulk_ops.core.config import load_config

    config = load_config(config_path)
    out: dict = {"targets": len(config.targets), "days": 31}
    try:
        now = time.time()
        started = time.perf_counter()
        seed_fleet(config, 1.0, now)
        write_summaries(client, Keys(prefix), [t.name for t in config.targets], 31, 31, now)
        say(f"seeded {len(config.targets)} targets x 31 days of summaries in {time.perf_counter() - started:.0f} s")
        from hulk_ops.dashboard import serve

        out["warm_up_s"] = serve.warm(config)
        touch_latest(config, time.time())
        out["load_avg_start"] = os.getloadavg()[0]
        record = render_times("latency 30 d", "latency", {"latency_window": "30 d"}, {}, runs)
        ms = [w * 1000 for w, _ in record[1:]]
        cpu = [c * 1000 for _, c in record[1:]]
        out["page"] = {"cold_ms": round(record[0][0] * 1000, 1), "p50_ms": round(statistics.median(ms), 1),
                       "p95_ms": round(percentile(ms, 0.95), 1), "cpu_p95_ms": round(percentile(cpu, 0.95), 1),
                       "budget_ms": PAGE_BUDGET_MS, "budget_met": percentile(ms, 0.95) <= PAGE_BUDGET_MS}
        say(f"latency 30 d page: cold {out['page']['cold_ms']} ms, p50 {out['page']['p50_ms']} ms, "
            f"p95 {out['page']['p95_ms']} ms (budget {PAGE_BUDGET_MS:.0f})")
        walls = []
        for _ in range(report_runs):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "hulk_ops", "report", "slo", "--config", str(config_path),
                                   "--window", "30d", "--json"], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=120)
            walls.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise RuntimeError(f"report slo failed: {done.stderr[-500:]}")
            rows = [json.loads(line) for line in done.stdout.splitlines()]
        out["report"] = {"runs": report_runs, "p50_s": round(statistics.median(walls), 2),
                         "max_s": round(max(walls), 2), "rows": len(rows), "budget_s": REPORT_BUDGET_S,
                         "budget_met": max(walls) <= REPORT_BUDGET_S}
        say(f"report slo --window 30d: p50 {out['report']['p50_s']} s, max {out['report']['max_s']} s over "
            f"{report_runs} runs (budget {REPORT_BUDGET_S})")
        out["load_avg_end"] = os.getloadavg()[0]
    finally:
        delete_prefix(client, prefix)
        client.close()
    return out


def run(quick: bool = False, targets: int = 2000, storage_targets: int = 100, runs: int | None = None,
        redis_url: str = "redis://127.0.0.1:6379/15", echo: bool = True, import_lines: int = 1_000_000) -> dict:
    say = (lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True)) if echo else (lambda *a, **k: None)
    runs = runs if runs is not None else (5 if quick else 20)
    return {"storage": storage(redis_url, 20 if quick else storage_targets, say),
            "import": history_import(redis_url, 100_000 if quick else import_lines, say),
            **page_and_report(redis_url, 200 if quick else targets, runs, 2 if quick else 5, say)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollups", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--storage-targets", type=int, default=100)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--import-lines", type=int, default=1_000_000)
    parser.add_argument("--skip-page", action="store_true", help="storage and import only")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if args.skip_page:
        say = lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True)  # noqa: E731
        figures = {"storage": storage(args.redis_url, args.storage_targets, say),
                   "import": history_import(args.redis_url, args.import_lines, say)}
    else:
        figures = run(args.quick, args.targets, args.storage_targets, args.runs, args.redis_url,
                      import_lines=args.import_lines)
    print(json.dumps(figures, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
