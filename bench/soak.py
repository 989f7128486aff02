"""`python -m bench.soak --minutes 60 --sessions 5`: run the demo under browsers for a while and report memory
growth and error-log lines against the budget (Python heap +10 %, RSS +100 MB, 0 error lines).

Starts the demo (sandbox/demo.py: servers, simulators, traffic, collector, dashboard) in its own workdir, store
prefix and audit schema, with `HULK_OPS_HEAP_STATS` set so the collector and the dashboard sample their own
Python heap (bench/heapstats.py: tracemalloc's traced bytes, counted from just after the imports, and the
interpreter's allocated blocks). N Chromium sessions
(Debian's /usr/bin/chromium, Playwright) sign in as the demo users and walk every page through the sidebar,
then reload (a new Streamlit session) and sign in again, for the whole run. Every `--sample-s` the script reads
each process's RSS (psutil). At the end it compares the end of the run (median of the last 3 samples) with its
start after `--warmup-s` (median of the first 3), counts error-level lines the collector and the dashboard
logged during the run, and writes everything to a JSON file (`--out`). Exit 0 within budget, 1 over it.
Not a test: a measurement (tests/unit/test_soak_analysis.py covers its arithmetic and the heap sampler).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from hulk_ops.dashboard.nav import PAGES
from sandbox.demo import Demo, pick_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
BUDGET = {"heap_growth_pct": 10.0, "rss_growth_mb": 100.0, "error_lines": 0}
USERS = ["viewer", "operator", "admin"]  # demo passwords are "<name>-demo" (hulk_ops/actions/identity.py)
# sidebar order of hulk_ops/dashboard/app.py; the walk clicks them by title
WALK = ["overview", "incidents", "target", "latency", "cost", "capacity", "radar", "actions", "audit", "silences",
        "health"]
# a Streamlit/logging line at ERROR or CRITICAL, a traceback (structlog's JSON lines are read by their level)
ERROR_TEXT = re.compile(r"\s(ERROR|CRITICAL)\s|^Traceback \(most recent")
ERROR_LEVELS = {"error", "critical", "exception", "fatal"}


@dataclass
class SessionStats:
    steps: int = 0
    logins: int = 0
    page_errors: list[str] = field(default_factory=list)
    exceptions_shown: int = 0
    timeouts: int = 0


async def settle(page: Any, timeout_ms: float = 60_000) -> None:
    """Until the app's script run is over (Streamlit marks its root with the script state)."""
    await page.wait_for_timeout(500)  # the click's rerun has started
    await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)


async def sign_in(page: Any, url: str, user: str) -> None:
    await page.goto(url)
    await page.get_by_role("textbox", name="User").fill(user)
    await page.get_by_role("textbox", name="Password").fill(f"{user}-demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=120_000)
    await settle(page)


async def session(browser: Any, url: str, user: str, deadline: float, dwell_s: float, stats: SessionStats) -> None:
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(120_000)  # the first load pays the server's imports; the machine may be loaded
    page.on("pageerror", lambda exc: stats.page_errors.append(str(exc)[:300]))
    try:
        while time.time() < deadline:
            try:
                await sign_in(page, url, user)  # a reload: a new Streamlit session each round
                stats.logins += 1
                for key in WALK:
                    if time.time() >= deadline:
                        break
                    await page.locator('[data-testid="stSidebarNav"]').get_by_text(PAGES[key][0], exact=True).click()
                    await settle(page)
                    stats.exceptions_shown += await page.locator('[data-testid="stException"]').count()
                    stats.steps += 1
                    await page.wait_for_timeout(dwell_s * 1000)  # the page refreshes itself meanwhile
            except Exception as exc:  # a slow step on a loaded machine: count it, start the round again
                if "Timeout" not in type(exc).__name__:
                    raise
                stats.timeouts += 1
    finally:
        await context.close()


async def drive(url: str, sessions: int, deadline: float, dwell_s: float) -> list[SessionStats]:
    from playwright.async_api import async_playwright

    stats = [SessionStats() for _ in range(sessions)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            await asyncio.gather(*(session(browser, url, USERS[i % len(USERS)], deadline, dwell_s, s)
                                   for i, s in enumerate(stats)))
        finally:
            await browser.close()
    return stats


async def sample_rss(pids: dict[str, int], every_s: float, deadline: float, out: dict[str, list[list[float]]]) -> None:
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    while True:
        now = time.time()
        for name, proc in procs.items():
            try:
                out[name].append([now, proc.memory_info().rss])
            except psutil.Error:
                pass
        if now >= deadline:
            return
        await asyncio.sleep(min(every_s, max(0.0, deadline - now)))


def growth(series: list[float]) -> dict[str, float | int | None]:
    """Start (median of the first 3 samples) to end (median of the last 3)."""
    if len(series) < 2:
        return {"samples": len(series), "start": None, "end": None, "growth": None, "growth_pct": None}
    k = min(3, len(series) // 2)
    start, end = statistics.median(series[:k]), statistics.median(series[-k:])
    return {"samples": len(series), "start": start, "end": end, "growth": end - start,
            "growth_pct": round(100.0 * (end - start) / start, 2) if start else None}


def heap_rows(folder: Path, component: str, pid: int, since: float) -> list[dict[str, Any]]:
    path = folder / f"{component}-{pid}.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [row for row in rows if row["t"] >= since]


def _grown(rows: list[dict[str, Any]], field: str, pair: Any) -> list[list[Any]]:
    """[key, value in the first row that has `field`, in the last, growth], most growth first; `pair` turns
    one entry of the field into (key, value)."""
    entries = [row[field] for row in rows if row.get(field)]
    if len(entries) < 2:
        return []
    first, last = dict(map(pair, entries[0])), dict(map(pair, entries[-1]))
    return sorted(([key, first.get(key, 0), value, value - first.get(key, 0)] for key, value in last.items()),
                  key=lambda g: -g[3])


def top_growth(rows: list[dict[str, Any]], limit: int = 10) -> list[list[Any]]:
    """[site, bytes at the start, bytes at the end, growth] for the sites that grew most (HULK_OPS_HEAP_STATS_TOP)."""
    return _grown(rows, "top", lambda entry: (entry[0], entry[1]))[:limit]


def type_growth(rows: list[dict[str, Any]], limit: int = 10) -> list[list[Any]]:
    """[type, objects at the start, at the end, growth] for the types whose object count grew most."""
    return [g for g in _grown(rows, "types", tuple) if g[3] > 0][:limit]


def heap_series(rows: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Traced bytes and allocated blocks of a process's heap rows (`heap_rows`)."""
    traced, blocks = [], []
    for row in rows:
        if row.get("traced_bytes") is not None:
            traced.append(float(row["traced_bytes"]))
        blocks.append(float(row["blocks"]))
    return traced, blocks


def error_lines(path: Path, offset: int) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if is_error(line)]


def is_error(line: str) -> bool:
    if line.startswith("{"):
        try:
            return str(json.loads(line).get("level", "")).lower() in ERROR_LEVELS
        except ValueError:
            pass
    return bool(ERROR_TEXT.search(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--sample-s", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--warmup-s", type=float, default=None,
                        help="not counted (imports, first renders, caches); default: 10 %% of the run, 30-300 s")
    parser.add_argument("--dwell-s", type=float, default=3.0, help="seconds on each page before the next click")
    parser.add_argument("--top", type=int, default=0, metavar="N",
                        help="also record the N source lines holding the most heap, and report which grew")
    parser.add_argument("--frames", type=int, default=1, metavar="K",
                        help="with --top: group the heap by call paths of K frames instead of by line (slower)")
    parser.add_argument("--workdir", default=".bench/soak")
    parser.add_argument("--out", default=None, help="JSON result (default: WORKDIR/soak.json)")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir).resolve()
    heap_dir = workdir / "heap"
    shutil.rmtree(heap_dir, ignore_errors=True)
    warmup = args.warmup_s if args.warmup_s is not None else min(300.0, max(30.0, args.minutes * 6.0))
    sample_s = min(args.sample_s, max(2.0, args.minutes * 60.0 / 10))
    demo = Demo(workdir, port=pick_port(8501), env={
        "HULK_OPS_HEAP_STATS": str(heap_dir), "HULK_OPS_HEAP_STATS_S": str(sample_s),
        "HULK_OPS_HEAP_STATS_TOP": str(args.top), "HULK_OPS_HEAP_STATS_FRAMES": str(args.frames)})
    logs = {name: workdir / f"{name}.log" for name in ("collector", "dashboard")}
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}
    started = time.time()
    try:
        demo.start()
        pids = {name: proc.pid for name, proc in demo.processes}
        url = f"http://127.0.0.1:{demo.port}"
        print(f"[soak] {args.sessions} sessions on {url} for {args.minutes:g} min (warm-up {warmup:g} s, "
              f"samples every {sample_s:g} s)", flush=True)
        deadline = time.time() + args.minutes * 60.0
        rss: dict[str, list[list[float]]] = {name: [] for name in pids}

        async def run() -> list[SessionStats]:
            sampler = asyncio.create_task(sample_rss(pids, sample_s, deadline, rss))
            stats = await drive(url, args.sessions, deadline, args.dwell_s)
            await sampler
            return stats

        stats = asyncio.run(run())
        ended = time.time()
        for name, proc in demo.processes:
            if proc.poll() is not None:
                print(f"[soak] {name} exited during the run ({proc.returncode})", file=sys.stderr)
    finally:
        demo.stop()

    since = started + warmup
    result: dict[str, Any] = {
        "command": "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
        "minutes": round((ended - started) / 60.0, 2), "sessions": args.sessions, "warmup_s": warmup,
        "sample_s": sample_s, "budget": BUDGET,
        "browser": {"page_steps": sum(s.steps for s in stats), "logins": sum(s.logins for s in stats),
                    "timeouts": sum(s.timeouts for s in stats),
                    "exceptions_shown": sum(s.exceptions_shown for s in stats),
                    "page_errors": [e for s in stats for e in s.page_errors][:20]},
        "processes": {},
    }
    within = True
    for name, pid in pids.items():
        rows = heap_rows(heap_dir, name, pid, since)
        traced, blocks = heap_series(rows)
        rss_after = [value for t, value in rss[name] if t >= since]
        heap, rss_growth = growth(traced), growth(rss_after)
        errors = error_lines(logs[name], offsets[name])
        heap_ok = heap["growth_pct"] is not None and heap["growth_pct"] <= BUDGET["heap_growth_pct"]
        rss_ok = rss_growth["growth"] is not None and rss_growth["growth"] / 2**20 <= BUDGET["rss_growth_mb"]
        errors_ok = len(errors) <= BUDGET["error_lines"]
        within &= heap_ok and rss_ok and errors_ok
        result["processes"][name] = {
            "pid": pid, "heap_traced_bytes": heap, "heap_blocks": growth(blocks), "rss_bytes": rss_growth,
            "heap_top_growth": top_growth(rows), "gc_type_growth": type_growth(rows),
            "error_lines": len(errors), "error_examples": errors[:10],
            "within_budget": {"heap": heap_ok, "rss": rss_ok, "errors": errors_ok},
        }
    result["within_budget"] = within
    out = Path(args.out) if args.out else workdir / "soak.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(report(result))
    print(f"[soak] result: {out}")
    return 0 if within else 1


def report(result: dict[str, Any]) -> str:
    lines = [f"{'process':10} {'heap start':>11} {'heap end':>10} {'heap %':>7} {'RSS start':>10} {'RSS end':>9} "
             f"{'RSS +MB':>8} {'errors':>6}"]
    for name, row in result["processes"].items():
        heap, rss = row["heap_traced_bytes"], row["rss_bytes"]

        def mb(value: float | None) -> str:
            return "-" if value is None else f"{value / 2**20:.1f}"

        lines.append(f"{name:10} {mb(heap['start']):>8} MB {mb(heap['end']):>7} MB "
                     f"{'-' if heap['growth_pct'] is None else heap['growth_pct']:>7} "
                     f"{mb(rss['start']):>7} MB {mb(rss['end']):>6} MB {mb(rss['growth']):>8} {row['error_lines']:>6}")
    browser = result["browser"]
    lines.append(f"browser: {browser['page_steps']} page visits, {browser['logins']} sign-ins, "
                 f"{browser['timeouts']} timeouts, {browser['exceptions_shown']} exceptions shown, "
                 f"{len(browser['page_errors'])} page errors")
    lines.append(f"budget: heap +{BUDGET['heap_growth_pct']:g} %, RSS +{BUDGET['rss_growth_mb']:g} MB, "
                 f"{BUDGET['error_lines']} error lines -> {'within' if result['within_budget'] else 'OVER'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
