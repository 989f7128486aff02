"""`python -m bench.pages`: server-side render time of every dashboard page on a large seeded store.

Seeds `--targets` targets (default 2,000) with `--hours` of history (default 24) under a private
key prefix in Redis db 15 (bench/fleet.py), then renders each page with Streamlit's AppTest: the
same script run a server does for a browser session, in-process. Per page, the page's `render()`
is timed (the server-side work: read model, numpy, figures, protobuf deltas): wall clock, and the
CPU time of the script thread (what the page costs, without waiting for a busy machine's CPUs).
The process is first warmed up as `hulk-ops dashboard` does before it listens (hulk_ops/dashboard/serve.py;
`--no-warm` skips it); the first render (cold) is reported apart from `--runs` more (p50/p95).
`AppTest.run()` adds its own overhead (element tree parsing), not counted. The keys are deleted
afterwards (`--keep` keeps them and prints the config path, `--reuse CONFIG` renders on them again).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import yaml

from bench.fleet import fleet_targets, seed_fleet
from tests.views_support import touch_latest

APP = str(Path(__file__).resolve().parents[1] / "hulk_ops" / "dashboard" / "app.py")
# (label, url path, session state to set before rendering, query params)
CASES = [
    ("overview", "", {}, {}),
    ("incidents (timeline 6 h)", "incidents", {}, {}),
    ("incidents (timeline 24 h)", "incidents", {"timeline_window": "24 h"}, {}),
    ("latency 1 h", "latency", {}, {}),
    ("latency 24 h", "latency", {"latency_window": "24 h"}, {}),
    ("cost 24 h", "cost", {}, {}),
    ("capacity 6 h", "capacity", {}, {}),
    ("capacity 24 h", "capacity", {"capacity_window": "24 h"}, {}),
    ("radar", "radar", {}, {}),
    ("target 1 h", "target", {}, {"target": "http-0000"}),
    ("target 24 h", "target", {"target_window": "24 h"}, {"target": "http-0000"}),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(module_name: str, record: list[tuple[float, float]]) -> None:
    """Wrap a view's render() to record (wall, thread CPU) seconds of each run (the router looks it up
    by module attribute on every script run)."""
    module = importlib.import_module(module_name)
    render = getattr(module, "_untimed_render", module.render)
    module._untimed_render = render

    def wrapper() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            render()
        finally:
            record.append((time.perf_counter() - wall, time.thread_time() - cpu))

    module.render = wrapper


def render_times(label: str, path: str, state: dict, query: dict, runs: int) -> list[tuple[float, float]]:
    from streamlit.testing.v1 import AppTest

    record: list[tuple[float, float]] = []
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if path:
        at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == path)
    for key, value in state.items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = value
    timed(f"hulk_ops.dashboard.views.{path.split('?')[0] or 'overview'}", record)
    for _ in range(runs + 1):
        at.run()
        if at.exception:
            raise SystemExit(f"{label}: {at.exception[0].value}")
    return record


BUDGET_MS = 300.0
BUDGET_PAGES = ("overview", "incidents", "latency", "cost", "capacity")  # the pages held to p95 <= 300 ms each
QUICK_CASES = ("overview", "incidents (timeline 24 h)", "latency 24 h", "cost 24 h", "capacity 24 h")


def run(quick: bool = False, targets: int = 2000, hours: float = 24.0, runs: int | None = None,
        redis_url: str = "redis://127.0.0.1:6379/15", keep: bool = False, reuse: str | None = None,
        only: str = "", warm: bool = True, echo: bool = True) -> dict:
    """Seed (or reuse) the store, render each page `runs` times; returns the figures (ms) per page.

    quick: 5 runs of the five pages with a budget over their longest window (same fleet: the budget is
    defined on 2,000 targets x 24 h). warm: fill the per-process caches first, as the server does at
    start (hulk_ops/dashboard/serve.py), so "cold" is the first render a user gets."""
    runs = runs if runs is not None else (5 if quick else 20)
    say = print if echo else (lambda *a, **k: None)
    if reuse:
        config_path = Path(reuse)
        prefix = yaml.safe_load(config_path.read_text())["store"]["prefix"]
    else:
        prefix = f"bench{uuid.uuid4().hex[:8]}:"
        config_path = Path(tempfile.mkdtemp(prefix="hulk-views-bench-")) / "bench.yaml"
        config_path.write_text(yaml.safe_dump({
            "store": {"redis_url": redis_url, "prefix": prefix, "retention_h": max(hours, 1)},
            "slo": {"availability": 99.9}, "cost": {"monthly_budget_usd": 20000},
            "actions": {"prices": {"cpu_hour": 0.031, "gib_hour": 0.004, "gpu_hour": 1.89}},
            "targets": fleet_targets(targets)}, sort_keys=False), encoding="utf-8")
    os.environ["HULK_OPS_CONFIG"] = str(config_path)
    from hulk_ops.core.config import load_config

    config = load_config(config_path)
    out: dict = {"targets": len(config.targets), "hours": hours, "runs": runs, "cpus": os.cpu_count(),
                 "budget_ms": BUDGET_MS, "pages": {}}
    if not reuse:
        started = time.perf_counter()
        out["seeded"] = seed_fleet(config, hours, time.time())
        say(f"seeded {out['seeded']} in {time.perf_counter() - started:.1f} s (prefix {prefix})", flush=True)
    wanted = [w for w in only.split(",") if w] or (list(QUICK_CASES) if quick else [])
    try:
        out["load_avg_start"] = os.getloadavg()[0]
        if warm:
            from hulk_ops.dashboard import serve

            out["warm_up_s"] = serve.warm(config)
            say("warm-up (as at server start): " + " ".join(f"{k} {v:.2f} s" for k, v in out["warm_up_s"].items()))
        say(f"load average {out['load_avg_start']:.1f} on {os.cpu_count()} CPUs")
        say(f"{'page':28} {'cold ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8} {'cpu p95':>8}")
        for label, path, state, query in CASES:
            if wanted and not any(label.startswith(w) for w in wanted):
                continue
            touch_latest(config, time.time())
            record = render_times(label, path, state, query, runs)
            cold, warm_runs = record[0], record[1:]
            ms = [w * 1000 for w, _ in warm_runs]
            cpu = [c * 1000 for _, c in warm_runs]
            figures = {"cold_ms": cold[0] * 1000, "cold_cpu_ms": cold[1] * 1000, "p50_ms": statistics.median(ms),
                       "p95_ms": percentile(ms, 0.95), "max_ms": max(ms), "cpu_p50_ms": statistics.median(cpu),
                       "cpu_p95_ms": percentile(cpu, 0.95)}
            out["pages"][label] = figures
            say(f"{label:28} {figures['cold_ms']:8.0f} {figures['p50_ms']:8.0f} {figures['p95_ms']:8.0f} "
                f"{figures['max_ms']:8.0f} {figures['cpu_p50_ms']:8.0f} {figures['cpu_p95_ms']:8.0f}", flush=True)
        out["load_avg_end"] = os.getloadavg()[0]
        budgeted = {k: v for k, v in out["pages"].items() if k.split(" ")[0] in BUDGET_PAGES}
        out["budget_met"] = all(v["p95_ms"] <= BUDGET_MS for v in budgeted.values()) if budgeted else None
        out["budget_met_cpu"] = all(v["cpu_p95_ms"] <= BUDGET_MS for v in budgeted.values()) if budgeted else None
        say(f"load average at the end {out['load_avg_end']:.1f}; p95 <= {BUDGET_MS:.0f} ms on "
            f"{', '.join(BUDGET_PAGES)}: wall {out['budget_met']}, CPU {out['budget_met_cpu']}")
    finally:
        if keep or reuse:
            out["config"] = str(config_path)
            say(f"kept: HULK_OPS_CONFIG={config_path}")
        else:
            client = redis.Redis.from_url(redis_url)
            for batch in _batches(client.scan_iter(match=f"{prefix}*", count=5000), 5000):
                client.delete(*batch)
            client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=None, help="renders per page after the first (20; quick: 5)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--keep", action="store_true", help="keep the seeded keys (and the config file)")
    parser.add_argument("--reuse", metavar="CONFIG", help="render on a store kept by an earlier --keep run")
    parser.add_argument("--only", default="", help="comma-separated page labels (prefix match)")
    parser.add_argument("--quick", action="store_true", help="5 runs of the five budgeted pages")
    parser.add_argument("--no-warm", action="store_true", help="skip the server-start warm-up (cold = first use)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.quick, args.targets, args.hours, args.runs, args.redis_url, args.keep, args.reuse,
                  args.only, warm=not args.no_warm)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 0


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


if __name__ == "__main__":
    sys.exit(main())
