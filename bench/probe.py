"""Probe efficiency: CPU per probe of the hulk-ops collector vs prometheus-blackbox-exporter.

    python -m bench.probe [--quick] [--kinds redis,postgres,nats,http,tcp] [--rate 100] [--targets N]
                          [--window 20] [--profile DIR]

Private loopback targets (a redis-server, a PostgreSQL, a nats-server with JetStream, an aiohttp HTTP
server and a TCP listener, in a temporary directory) are probed, one kind at a time, by both at the same rate:

- **hulk-ops**: `hulk-ops collect` (a subprocess, uvloop, the real scheduler, probes, breakers, metrics
  and store writes to its own private redis-server) with `rate` targets of the kind at a 1 s interval
  (PostgreSQL: 80 targets at a shorter interval, same rate); `--targets N`: N targets at an interval of
  N / rate seconds (e.g. `--rate 400 --targets 2000`: 2,000 targets at 5 s), same rate for blackbox.
- **blackbox_exporter** (`/usr/bin/prometheus-blackbox-exporter`): `/probe?target=..&module=..` called
  `rate` times a second by a driver thread in this process (aiohttp, keep-alive). Modules: Redis = tcp
  with query PING / expect +PONG, PostgreSQL = tcp connect (blackbox has no PostgreSQL prober), NATS = tcp
  expecting INFO, HTTP = http 2xx, TCP = tcp connect.

Both run at the same time over the same window (same machine load). CPU = utime + stime of each process
from /proc/<pid>/stat over the window, divided by the probes it completed in the window (hulk-ops: its
`hulk_ops_probes_total`; blackbox: the driver's answered requests). The driver's own CPU is reported
apart and not charged to blackbox_exporter. Ratio = hulk-ops / blackbox per kind (budget <= 0.3).

What each does per probe differs, and the doc says so: hulk-ops' Redis probe is PING + INFO (and stores
~10 metrics), PostgreSQL `SELECT 1` + a stats query (the database size at most every 60 s), NATS PING/PONG +
JetStream account and stream info (sent together), HTTP one GET on a kept-alive connection, TCP a connect;
each result is written to the store. blackbox opens a new connection for every probe and stores nothing.
Wake-ups per probe: the collector's voluntary context switches over the window, per probe.

`HULK_BENCH_COLLECTOR_SRC=/path/to/other/checkout python -m bench.probe` runs that checkout's collector
instead (same targets, Python and libraries): a before/after comparison of collector changes.
`--profile DIR` profiles the collector over each measured window (cProfile, CPU clock; `bench/profiled.py`)
into DIR/<kind>.prof (`python -m pstats DIR/redis.prof`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from sandbox.services import Services, find_binary, free_port, stop_process, wait_port

KINDS = ("redis", "postgres", "nats", "http", "tcp")
MAX_TARGETS = {"postgres": 80}
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_MODULES = {
    "redis_ping": {"prober": "tcp", "timeout": "5s", "tcp": {
        "preferred_ip_protocol": "ip4", "query_response": [{"send": "PING"}, {"expect": "^\\+PONG"}]}},
    "tcp_connect": {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4"}},
    "nats_info": {"prober": "tcp", "timeout": "5s", "tcp": {
        "preferred_ip_protocol": "ip4", "query_response": [{"expect": "^INFO"}]}},
    "http_2xx": {"prober": "http", "timeout": "5s", "http": {"preferred_ip_protocol": "ip4"}},
}
WHAT = {
    "redis": ("PING + INFO on a pooled connection, ~10 metrics stored", "new connection, PING, expect +PONG"),
    "postgres": ("SELECT 1 + a stats query on a pooled connection (database size every 60 s)",
                 "new TCP connection (no PostgreSQL prober)"),
    "nats": ("PING/PONG + JetStream account and streams info in one exchange, pooled", "new connection, expect INFO"),
    "http": ("GET on a kept-alive connection, status and body checked", "new connection, GET, 2xx"),
    "tcp": ("new connection (connect time)", "new connection"),
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid: int) -> int:
    """Times the process's threads went to sleep and woke up (voluntary context switches): at a few hundred
    probes a second and less, waking up is most of a collector's CPU."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # a thread that ended meanwhile
            continue
        total += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(port: int, timeout: float = 30) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        return resp.read().decode()


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


# -- the HTTP and TCP targets ---------------------------------------------------------------------------
async def _serve(http_port: int, tcp_port: int) -> None:
    from aiohttp import web

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port, backlog=1024).start()

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", tcp_port, backlog=1024)
    async with server:
        await asyncio.Event().wait()


def serve_main(http_port: int, tcp_port: int) -> None:
    import uvloop

    uvloop.run(_serve(http_port, tcp_port))


# -- the blackbox driver --------------------------------------------------------------------------------
class Driver:
    """Calls blackbox_exporter's /probe at a fixed rate from its own thread and event loop."""

    def __init__(self, port: int, target: str, module: str, rate: float) -> None:
        self.url = f"http://127.0.0.1:{port}/probe"
        self.params = {"target": target, "module": module}
        self.rate = rate
        self.done = 0
        self.ok = 0
        self.late = 0
        self.cpu = 0.0  # this thread's CPU seconds, updated after every request
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="blackbox-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def snapshot(self) -> tuple[int, int, float]:
        return self.done, self.ok, self.cpu

    def _main(self) -> None:
        import uvloop

        uvloop.run(self._run())

    async def _run(self) -> None:
        import aiohttp

        limit = asyncio.Semaphore(64)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                         timeout=aiohttp.ClientTimeout(total=10)) as session:
            tasks: set[asyncio.Task[None]] = set()
            started, n = time.monotonic(), 0
            while not self._stop.is_set():
                due = started + n / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:
                    self.late += 1
                n += 1
                await limit.acquire()
                task = asyncio.create_task(self._one(session, limit))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=10)

    async def _one(self, session: Any, limit: asyncio.Semaphore) -> None:
        try:
            async with session.get(self.url, params=self.params) as resp:
                body = await resp.text()
            self.done += 1
            if "\nprobe_success 1" in body:
                self.ok += 1
        except Exception:
            pass
        finally:
            limit.release()
            self.cpu = time.thread_time()


# -- one run --------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, workdir: Path, rate: int, kinds: tuple[str, ...], targets: int | None = None,
                 profile: Path | None = None) -> None:
        self.workdir = workdir
        self.rate = rate
        self.targets = targets or rate
        self.profile = profile
        self.procs: list[subprocess.Popen[bytes]] = []
        workdir.chmod(0o755)  # a private PostgreSQL runs as the postgres user when we are root
        self.services = Services(workdir / "services", reuse=False)
        self.endpoints = {kind: getattr(self.services, kind)() for kind in kinds if kind in ("redis", "postgres",
                                                                                             "nats")}
        self.store_port = free_port()
        redis_server = find_binary("redis-server") or "redis-server"
        self.store = self._spawn("store-redis", [redis_server, "--port", str(self.store_port), "--bind", "127.0.0.1",
                                                 "--save", "", "--appendonly", "no", "--dir", str(workdir)])
        wait_port(self.store_port, 15, self.procs[-1], "redis-server (store)")
        self.http_port, self.tcp_port = free_port(), free_port()
        self._spawn("targets", [sys.executable, "-m", "bench.probe", "--serve", str(self.http_port),
                                str(self.tcp_port)])
        wait_port(self.http_port, 30, self.procs[-1], "http target")
        wait_port(self.tcp_port, 30, self.procs[-1], "tcp target")
        self.blackbox_port = free_port()
        config = workdir / "blackbox.yml"
        config.write_text(yaml.safe_dump({"modules": BLACKBOX_MODULES}), encoding="utf-8")
        binary = find_binary(BLACKBOX)
        if binary is None:
            raise SystemExit(f"{BLACKBOX} not found: `python -m sandbox.services install --with {BLACKBOX}`")
        self.blackbox = self._spawn("blackbox", [binary, f"--config.file={config}", "--log.level=warn",
                                                 f"--web.listen-address=127.0.0.1:{self.blackbox_port}"])
        wait_port(self.blackbox_port, 30, self.blackbox, BLACKBOX)
        self.blackbox_version = _version([binary, "--version"])

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
               cwd: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.services.stop()

    def address(self, kind: str) -> tuple[str, str, str]:
        """(hulk-ops url, blackbox target, blackbox module) of a kind's loopback target."""
        if kind in ("redis", "postgres", "nats"):
            port = self.endpoints[kind].port
            return {"redis": (f"redis://127.0.0.1:{port}/0", f"127.0.0.1:{port}", "redis_ping"),
                    "postgres": (f"postgresql://postgres@127.0.0.1:{port}/postgres", f"127.0.0.1:{port}",
                                 "tcp_connect"),
                    "nats": (f"nats://127.0.0.1:{port}", f"127.0.0.1:{port}", "nats_info")}[kind]
        if kind == "http":
            url = f"http://127.0.0.1:{self.http_port}/health"
            return url, url, "http_2xx"
        return f"tcp://127.0.0.1:{self.tcp_port}", f"127.0.0.1:{self.tcp_port}", "tcp_connect"

    def collector(self, kind: str, url: str) -> tuple[subprocess.Popen[bytes], int]:
        """`hulk-ops collect` from this checkout, or from `HULK_BENCH_COLLECTOR_SRC` (another checkout: a
        before/after comparison on the same targets, same Python and libraries)."""
        # `targets` (default: `rate`) targets at an interval of targets / rate: `rate` probes a second
        # (PostgreSQL: at most 80 connections, each probed more often, so that a stock max_connections of 100 holds)
        n = min(self.targets, MAX_TARGETS.get(kind, self.targets))
        interval = round(n / self.rate, 3)
        targets = [{"name": f"{kind}-{i:04d}", "kind": kind, "url": url, "interval_s": interval,
                    "timeout_s": interval} for i in range(n)]
        config = {"store": {"redis_url": f"redis://127.0.0.1:{self.store_port}/0", "prefix": f"bench:{kind}:"},
                  "collector": {"concurrency": 256}, "targets": targets}
        path = self.workdir / f"collector-{kind}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        port = free_port()
        src = os.environ.get("HULK_BENCH_COLLECTOR_SRC") or os.environ.get("HULK_OPS_BENCH_COLLECTOR_SRC")
        env = dict(os.environ, PYTHONPATH=src) if src else None
        command = ["-m", "hulk_ops"]
        if self.profile is not None:
            command = [str(Path(__file__).with_name("profiled.py")), str(self.profile.resolve() / f"{kind}.prof")]
        proc = self._spawn(f"collector-{kind}", [sys.executable, *command, "collect", "--config",
                                                 str(path), "--metrics-port", str(port), "--log-level", "WARNING"],
                           env=env, cwd=src)
        wait_port(port, 60, proc, "hulk-ops collect")
        return proc, port

    def measure(self, kind: str, warmup: float, window: float) -> dict[str, Any]:
        url, bb_target, module = self.address(kind)
        proc, port = self.collector(kind, url)
        driver = Driver(self.blackbox_port, bb_target, module, self.rate)
        driver.start()
        try:
            time.sleep(warmup)
            text = scrape(port)
            h0, h_up0 = metric_sum(text, "hulk_ops_probes_total"), metric_sum(text, "hulk_ops_probes_total",
                                                                               status="up")
            if self.profile is not None:
                os.kill(proc.pid, signal.SIGUSR1)
            c0, b0, d0 = cpu_seconds(proc.pid), cpu_seconds(self.blackbox.pid), driver.snapshot()
            s0, w0 = cpu_seconds(self.store.pid), wakeups(proc.pid)
            t0 = time.monotonic()
            time.sleep(window)
            c1, b1, d1 = cpu_seconds(proc.pid), cpu_seconds(self.blackbox.pid), driver.snapshot()
            s1, w1 = cpu_seconds(self.store.pid), wakeups(proc.pid)
            if self.profile is not None:
                os.kill(proc.pid, signal.SIGUSR2)
            elapsed = time.monotonic() - t0
            text = scrape(port)
            h1, h_up1 = metric_sum(text, "hulk_ops_probes_total"), metric_sum(text, "hulk_ops_probes_total",
                                                                               status="up")
            hulk_rss = rss_mb(proc.pid)
            bb_rss = rss_mb(self.blackbox.pid)
        finally:
            driver.stop()
            stop_process(proc)
        hulk_probes, bb_probes = h1 - h0, d1[0] - d0[0]
        hulk_ms = 1000 * (c1 - c0) / max(hulk_probes, 1)
        bb_ms = 1000 * (b1 - b0) / max(bb_probes, 1)
        return {
            "kind": kind, "window_s": round(elapsed, 1), "rate_per_s": self.rate,
            "targets": min(self.targets, MAX_TARGETS.get(kind, self.targets)),
            "hulk_probes": int(hulk_probes), "hulk_up": int(h_up1 - h_up0), "hulk_cpu_s": round(c1 - c0, 3),
            "hulk_ms_per_probe": round(hulk_ms, 4),
            "hulk_wakeups_per_probe": round((w1 - w0) / max(hulk_probes, 1), 2), "hulk_rss_mb": round(hulk_rss, 1),
            "blackbox_probes": bb_probes, "blackbox_success": d1[1] - d0[1], "blackbox_cpu_s": round(b1 - b0, 3),
            "blackbox_ms_per_probe": round(bb_ms, 4), "blackbox_rss_mb": round(bb_rss, 1),
            "driver_ms_per_probe": round(1000 * (d1[2] - d0[2]) / max(bb_probes, 1), 4),
            "store_ms_per_probe": round(1000 * (s1 - s0) / max(hulk_probes, 1), 4),
            "ratio": round(hulk_ms / bb_ms, 3) if bb_ms > 0 else None,
            "hulk_does": WHAT[kind][0], "blackbox_does": WHAT[kind][1],
        }


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]


BUDGET = 0.3


def run(quick: bool = False, kinds: tuple[str, ...] = KINDS, rate: int | None = None,
        window: float | None = None, warmup: float | None = None, targets: int | None = None,
        profile: Path | None = None) -> dict[str, Any]:
    rate = rate or (50 if quick else 100)
    window = window or (6.0 if quick else 20.0)
    warmup = warmup or (3.0 if quick else 5.0)
    workdir = Path(tempfile.mkdtemp(prefix="hulk-bench-probe-"))
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir, rate, kinds, targets, profile)
    results = []
    try:
        for kind in kinds:
            results.append(bench.measure(kind, warmup, window))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = [r["ratio"] for r in results if r["ratio"] is not None]
    return {
        "rate_per_s": rate, "targets": targets or rate, "window_s": window, "warmup_s": warmup, "budget_ratio": BUDGET,
        "blackbox_version": bench.blackbox_version,
        "kinds": {r["kind"]: r for r in results},
        "ratio_max": max(ratios) if ratios else None,
        "budget_met": bool(ratios) and max(ratios) <= BUDGET,
    }


def table(figures: dict[str, Any]) -> str:
    lines = ["| kind | hulk-ops ms CPU / probe | blackbox ms CPU / probe | ratio | budget <= 0.3x | probes "
             "(hulk-ops / blackbox) | hulk-ops wake-ups / probe | driver ms / probe (not charged) | hulk-ops' store "
             "redis-server ms / probe (not charged) |", "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    for kind, r in figures["kinds"].items():
        ratio = r["ratio"]
        verdict = "met" if ratio is not None and ratio <= BUDGET else (
            f"missed by {ratio / BUDGET:.1f}x" if ratio else "no data")
        lines.append(f"| {kind} | {r['hulk_ms_per_probe']:.3f} | {r['blackbox_ms_per_probe']:.3f} | {ratio} | "
                     f"{verdict} | {r['hulk_probes']} ({r['hulk_up']} up) / {r['blackbox_probes']} "
                     f"({r['blackbox_success']} ok) | {r.get('hulk_wakeups_per_probe', '-')} | "
                     f"{r['driver_ms_per_probe']:.3f} | "
                     f"{r.get('store_ms_per_probe', 0):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--rate", type=int, default=None, help="probes per second of each (default 100, quick 50)")
    parser.add_argument("--targets", type=int, default=None,
                        help="targets of each kind, at an interval of targets / rate (default: rate, 1 s)")
    parser.add_argument("--window", type=float, default=None, help="measured seconds per kind (default 20)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the window (default 5)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="write a cProfile of the collector over each window to DIR/<kind>.prof")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("HTTP_PORT", "TCP_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(*args.serve)
        return 0
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))} (known: {', '.join(KINDS)})")
    if args.targets is not None and args.targets < 1:
        parser.error("--targets must be at least 1")
    figures = run(args.quick, kinds, args.rate, args.window, args.warmup, args.targets, args.profile)
    print(table(figures))
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
