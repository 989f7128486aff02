"""`python -m bench.browser`: how long each page takes to show in Chromium, on the page benchmark's store.

Seeds 2,000 targets x 24 h (bench/fleet.py; or `--reuse CONFIG` from `python -m bench.pages --keep`), starts
`hulk-ops dashboard` on it and drives Debian's Chromium with Playwright: per page, `--runs` full loads (a new
session: the frontend boots, the script runs, every chart draws) and in-app navigations (a sidebar click),
timed to the page's freshness line (content shown) and to its last chart drawn. Prints p50/p95.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from bench.fleet import fleet_targets, seed_fleet
from bench.pages import _batches, percentile
from sandbox.services import free_port, stop_process, wait_port
from tests.views_support import touch_latest

PAGES = [("", "Overview"), ("incidents", "Incidents"), ("latency", "Latency & SLOs"), ("cost", "Cost"),
         ("capacity", "Capacity"), ("radar", "Technology radar"), ("target?target=http-0000", "Target detail")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def shown(page, charts: bool) -> None:
    page.get_by_text("Read from the store at").first.wait_for(timeout=120_000)
    if charts:
        page.wait_for_function("() => [...document.querySelectorAll('.stPlotlyChart')].every("
                               "c => c.querySelector('.main-svg'))", timeout=120_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", metavar="CONFIG")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from hulk_ops.config import load_config

    if args.reuse:
        path = Path(args.reuse)
    else:
        path = Path(tempfile.mkdtemp(prefix="hulk-views-bench-")) / "bench.yaml"
        path.write_text(yaml.safe_dump({"store": {"redis_url": "redis://127.0.0.1:6379/15",
                                                  "prefix": f"bench{uuid.uuid4().hex[:8]}:"},
                                        "targets": fleet_targets(args.targets)}), encoding="utf-8")
    config = load_config(path)
    if not args.reuse:
        seed_fleet(config, args.hours, time.time())
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hulk_ops.cli", "dashboard", "--config", str(path), "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, 90, proc, "dashboard")
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(url)
            shown(page, False)  # the server's first session pays its imports: not counted
            print(f"{'page':18} {'load p50':>9} {'load p95':>9} {'charts p50':>11} {'charts p95':>11} "
                  f"{'click p50':>10} {'click p95':>10}  (seconds)")
            for route, title in PAGES:
                loads, full, clicks = [], [], []
                for _ in range(args.runs):
                    touch_latest(config, time.time())
                    started = time.monotonic()
                    page.goto(f"{url}/{route}")
                    shown(page, False)
                    loads.append(time.monotonic() - started)
                    shown(page, True)
                    full.append(time.monotonic() - started)
                    page.get_by_role("link", name="Overview").first.click()
                    shown(page, False)
                    started = time.monotonic()
                    page.get_by_role("link", name=title).first.click()
                    shown(page, False)
                    clicks.append(time.monotonic() - started)
                print(f"{title:18} {statistics.median(loads):9.2f} {percentile(loads, .95):9.2f} "
                      f"{statistics.median(full):11.2f} {percentile(full, .95):11.2f} "
                      f"{statistics.median(clicks):10.2f} {percentile(clicks, .95):10.2f}", flush=True)
            browser.close()
    finally:
        stop_process(proc)
        if not args.reuse:
            import redis

            client = redis.Redis.from_url(config.store.redis_url)
            for batch in _batches(client.scan_iter(match=f"{config.store.prefix}*", count=5000), 5000):
                client.delete(*batch)
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
