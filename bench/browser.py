"""`python -m bench.browser`: how long each page takes to show in Chromium, on the page benchmark's store.

Seeds 2,000 targets x 24 h (bench/fleet.py; or `--reuse CONFIG` from `python -m bench.pages --keep`), starts
`hulk-ops dashboard` on it (demo-like: local users, an audit schema in the shared PostgreSQL, one NATS target
with a private stream on the shared NATS) and drives Debian's Chromium with Playwright:

- fresh process: seconds from starting `hulk-ops dashboard` until it listens, then the first full load of
  the Overview (what the first person after a restart waits for);
- per page, `--runs` full loads (a new session: the frontend boots, the script runs, every chart draws)
  and in-app navigations (a sidebar click), timed to the page's freshness line (content shown) and to its
  last chart drawn;
- the action dialog: signed in as operator, from the click on "Dry-run" (purge form) until the dialog
  shows the dry-run's preview.

Prints p50/p95; `run()` returns the same figures as a dict.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench.fleet import fleet_targets, seed_fleet
from bench.pages import _batches, percentile
from sandbox.services import free_port, stop_process, wait_port
from tests.views_support import touch_latest

PAGES = [("", "Overview"), ("incidents", "Incidents"), ("latency", "Latency & SLOs"), ("cost", "Cost"),
         ("capacity", "Capacity"), ("radar", "Technology radar"), ("target?target=http-0000", "Target detail")]
QUICK_PAGES = ("Overview", "Incidents", "Latency & SLOs", "Cost", "Capacity")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
BUDGET_FULL_S = 2.0
BUDGET_DIALOG_S = 1.0
STREAM_MESSAGES = 25
TIMEOUT_MS = 120_000


def shown(page, charts: bool) -> None:
    page.get_by_text("Read from the store at").first.wait_for(timeout=TIMEOUT_MS)
    if charts:
        page.wait_for_function("() => [...document.querySelectorAll('.stPlotlyChart')].every("
                               "c => c.querySelector('.main-svg'))", timeout=TIMEOUT_MS)


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50_s": statistics.median(values), "p95_s": percentile(values, 0.95), "max_s": max(values)}


def _run_async(coro: Any) -> Any:
    """Run a coroutine to its end from sync code, also inside Playwright's sync API (which owns a loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class ActionFixture:
    """What the dialog needs, private to this run: a JetStream stream on the shared NATS, an audit schema in
    the shared PostgreSQL (both removed afterwards)."""

    def __init__(self, workdir: Path) -> None:
        from sandbox.services import Services

        self.services = Services(workdir)
        self.nats_url = self.services.nats().url
        self.postgres_url = self.services.postgres().url
        self.stream = f"BENCH{uuid.uuid4().hex[:10].upper()}"
        self.schema = f"bench_audit_{uuid.uuid4().hex[:12]}"

    def config(self) -> dict[str, Any]:
        from hulk_ops.actions.identity import demo_auth_section

        return {"audit": {"url": self.postgres_url, "schema_name": self.schema}, "auth": demo_auth_section(),
                "actions": {"prices": {"cpu_hour": 0.031, "gib_hour": 0.004, "gpu_hour": 1.10}}}

    def target(self) -> dict[str, Any]:
        return {"name": "nats-bench", "kind": "nats", "url": self.nats_url, "interval_s": 15}

    async def _js(self, fn: Any) -> None:
        import nats

        nc = await nats.connect(self.nats_url, connect_timeout=5)
        try:
            await fn(nc.jetstream())
        finally:
            await nc.close()

    def create(self) -> None:
        async def go(js: Any) -> None:
            await js.add_stream(name=self.stream, subjects=[f"{self.stream}.>"])
            for i in range(STREAM_MESSAGES):
                await js.publish(f"{self.stream}.orders", f"{i:08d}".encode())

        _run_async(self._js(go))

    def remove(self) -> None:
        async def go(js: Any) -> None:
            await js.delete_stream(self.stream)

        for step in (lambda: _run_async(self._js(go)), self._drop_schema):
            try:
                step()
            except Exception as exc:  # cleanup: report, go on
                print(f"cleanup: {type(exc).__name__}: {exc}", file=sys.stderr)
        self.services.stop()  # stops only what it started (nothing when the shared servers run)

    def _drop_schema(self) -> None:
        from sandbox.demo import drop_schema

        drop_schema(self.postgres_url, self.schema)


def time_dialog(page, url: str, stream: str, runs: int) -> list[float]:
    """Sign in as operator, then per run: open Actions, fill the purge form, click Dry-run, wait for the preview."""
    from hulk_ops.actions.identity import DEMO_PASSWORDS

    page.goto(f"{url}/actions")
    page.get_by_role("textbox", name="User").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("textbox", name="User").fill("operator")
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORDS["operator"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=TIMEOUT_MS)
    times = []
    for _ in range(runs):  # the session holds the sign-in: stay in it (a reload signs out)
        box = page.get_by_role("textbox", name="Stream", exact=True)
        box.wait_for(timeout=TIMEOUT_MS)
        box.fill(stream)
        box.press("Enter")
        page.wait_for_function("() => [...document.querySelectorAll('button')].some("
                               "b => b.innerText.includes('Dry-run') && !b.disabled)", timeout=TIMEOUT_MS)
        started = time.monotonic()
        page.get_by_role("button", name="Dry-run").click()
        page.get_by_role("dialog").get_by_text(f"purge {STREAM_MESSAGES} of {STREAM_MESSAGES} message(s)").wait_for(
            timeout=TIMEOUT_MS)
        times.append(time.monotonic() - started)
        page.keyboard.press("Escape")
        page.get_by_role("dialog").wait_for(state="detached", timeout=TIMEOUT_MS)
    return times


def start_dashboard(path: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str, float]:
    """`hulk-ops dashboard` on a (free) port: (process, URL, seconds until it listened)."""
    from sandbox.services import port_open

    port = port or free_port()
    started = time.monotonic()
    # a config with a login needs a cookie secret (hulk-ops dashboard refuses to start without one)
    env = dict(os.environ, STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_urlsafe(48))
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "dashboard", "--config", str(path), "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True, env=env)
    while not port_open(port, timeout=0.05):
        if proc.poll() is not None or time.monotonic() - started > 180:
            stop_process(proc)
            errors.seek(0)
            tail = errors.read()[-600:].decode(errors="replace")
            raise SystemExit(f"the dashboard did not start: {tail}")
        time.sleep(0.05)
    listened = time.monotonic() - started
    wait_port(port, 5, proc, "dashboard")
    return proc, f"http://127.0.0.1:{port}", listened


def run(quick: bool = False, targets: int = 2000, hours: float = 24.0, runs: int | None = None,
        reuse: str | None = None, dialog: bool = True, echo: bool = True) -> dict:
    """Start a dashboard on a seeded store and time it in Chromium; returns the figures (seconds).

    Pages are timed on a dashboard without sign-in (a full load starts a new session, which would sign out);
    the dialog on a second one over the same store with the demo's users, an audit schema and a NATS target.
    quick: 2 runs of the five budgeted pages and 3 of the dialog (same fleet)."""
    from playwright.sync_api import sync_playwright

    from hulk_ops.core.config import load_config

    runs = runs if runs is not None else (2 if quick else 5)
    say = print if echo else (lambda *a, **k: None)
    out: dict[str, Any] = {"targets": targets, "hours": hours, "runs": runs, "budget_full_s": BUDGET_FULL_S,
                           "budget_dialog_s": BUDGET_DIALOG_S, "load_avg_start": os.getloadavg()[0], "pages": {}}
    workdir = Path(tempfile.mkdtemp(prefix="hulk-views-bench-"))
    if reuse:
        raw = yaml.safe_load(Path(reuse).read_text(encoding="utf-8"))
    else:
        raw = {"store": {"redis_url": "redis://127.0.0.1:6379/15", "prefix": f"bench{uuid.uuid4().hex[:8]}:"},
               "targets": fleet_targets(targets)}
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    config = load_config(path)
    if not reuse:
        seed_fleet(config, hours, time.time())
    procs: list[subprocess.Popen[bytes]] = []
    actions = None
    try:
        proc, url, _ = start_dashboard(path)
        procs.append(proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(url)  # the browser's first visit fills its caches (the frontend's code): not counted
            shown(page, True)
            page.goto("about:blank")
            stop_process(procs.pop())  # then a fresh server process on the same origin
            proc, url, listened = start_dashboard(path, int(url.rsplit(":", 1)[1]))
            procs.append(proc)
            out["fresh_listen_s"] = listened
            first = time.monotonic()
            page.goto(url)
            shown(page, True)
            out["fresh_first_full_s"] = time.monotonic() - first
            say(f"fresh process: listening after {listened:.1f} s, first Overview fully drawn "
                f"{out['fresh_first_full_s']:.2f} s later (load average {os.getloadavg()[0]:.1f})", flush=True)
            say(f"{'page':18} {'load p50':>9} {'load p95':>9} {'charts p50':>11} {'charts p95':>11} "
                f"{'click p50':>10} {'click p95':>10}  (seconds)")
            for route, title in PAGES:
                if quick and title not in QUICK_PAGES:
                    continue
                loads, full, clicks = [], [], []
                for _ in range(runs):
                    touch_latest(config, time.time())
                    begun = time.monotonic()
                    page.goto(f"{url}/{route}")
                    shown(page, False)
                    loads.append(time.monotonic() - begun)
                    shown(page, True)
                    full.append(time.monotonic() - begun)
                    page.get_by_role("link", name="Overview").first.click()
                    shown(page, False)
                    begun = time.monotonic()
                    page.get_by_role("link", name=title).first.click()
                    shown(page, False)
                    clicks.append(time.monotonic() - begun)
                out["pages"][title] = {"load": _stats(loads), "full": _stats(full), "click": _stats(clicks)}
                say(f"{title:18} {statistics.median(loads):9.2f} {percentile(loads, .95):9.2f} "
                    f"{statistics.median(full):11.2f} {percentile(full, .95):11.2f} "
                    f"{statistics.median(clicks):10.2f} {percentile(clicks, .95):10.2f}", flush=True)
            stop_process(procs.pop())
            if dialog:
                actions = ActionFixture(workdir / "services")
                actions.create()
                demo = {**raw, **actions.config(),
                        "targets": [actions.target(), *[t for t in raw["targets"] if t["name"] != "nats-bench"]]}
                demo_path = workdir / "demo-like.yaml"
                demo_path.write_text(yaml.safe_dump(demo, sort_keys=False), encoding="utf-8")
                proc, demo_url, _ = start_dashboard(demo_path)
                procs.append(proc)
                times = time_dialog(page, demo_url, actions.stream, max(runs, 3))
                out["dialog"] = _stats(times)
                say(f"action dialog (operator, purge dry-run -> preview shown): p50 {out['dialog']['p50_s']:.2f} s, "
                    f"p95 {out['dialog']['p95_s']:.2f} s, max {out['dialog']['max_s']:.2f} s", flush=True)
            browser.close()
        out["load_avg_end"] = os.getloadavg()[0]
        out["budget_met"] = all(v["full"]["p95_s"] <= BUDGET_FULL_S for v in out["pages"].values())
        if "dialog" in out:
            out["budget_dialog_met"] = out["dialog"]["p95_s"] <= BUDGET_DIALOG_S
        say(f"load average at the end {out['load_avg_end']:.1f}; full render p95 <= {BUDGET_FULL_S} s: "
            f"{out['budget_met']}; dialog p95 <= {BUDGET_DIALOG_S} s: {out.get('budget_dialog_met')}")
    finally:
        for proc in procs:
            stop_process(proc)
        if actions is not None:
            actions.remove()
        if not reuse:
            import redis

            client = redis.Redis.from_url(config.store.redis_url)
            for batch in _batches(client.scan_iter(match=f"{config.store.prefix}*", count=5000), 5000):
                client.delete(*batch)
            client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=None, help="loads per page (5; quick: 2)")
    parser.add_argument("--reuse", metavar="CONFIG", help="a store kept by `python -m bench.pages --keep`")
    parser.add_argument("--quick", action="store_true", help="2 runs of the five budgeted pages and the dialog")
    parser.add_argument("--no-dialog", action="store_true", help="skip the action dialog (needs NATS, PostgreSQL)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.quick, args.targets, args.hours, args.runs, args.reuse, dialog=not args.no_dialog)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
