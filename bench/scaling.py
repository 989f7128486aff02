"""Sharded collectors at scale: N `hulk-ops collect` replicas over M loopback Redis targets.

    python -m bench.scaling [--replicas 10] [--targets 10000] [--interval 10] [--write-docs]

A private redis-server (loopback, its own port) is both the targets and the store, so the shared
one is left alone. The bench waits for every replica to be active, measures how even the split is
(hulk_ops_targets_owned on each /metrics), audits every slot of every target in a steady window
(exactly one probe each, from the stored history), kills one replica with SIGKILL and measures how
long its targets take to be probed by the others, and reports the CPU the replicas spent per probe.
`--write-docs` puts the figures into docs/scaling.md between its bench markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
import redis
import yaml

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.shard_audit import audit, probe_times
from hulk_ops.collectors.sharding import assign
from hulk_ops.core.config import load_config
from sandbox.services import find_binary, free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/scaling.md"
BEGIN, END = "<!-- bench:scaling:begin -->", "<!-- bench:scaling:end -->"


def start_redis(workdir: Path, clients: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    binary = find_binary("redis-server") or "redis-server"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--maxclients", str(clients), "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port, 15, proc, "redis-server")
    return proc, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def owned(port: int, replica: str) -> float:
    # /metrics of a replica carries per-target series for every target of the config (~20 MB at 10,000)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    match = re.search(rf'^hulk_ops_targets_owned\{{replica="{replica}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else -1.0


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.redis_proc, port = start_redis(workdir, args.targets + 2000)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis.from_url(self.url)
        self.prefix = "bench:"
        self.config_path = workdir / "hulk-ops.yaml"
        targets = [{"name": f"t{i:05d}", "kind": "redis", "url": self.url, "interval_s": args.interval,
                    "timeout_s": min(2.0, args.interval / 4)} for i in range(args.targets)]
        sharding = {"enabled": True, "membership_ttl_s": args.ttl, "sync_s": args.ttl / 5,
                    "handover_s": args.handover or max(2 * args.ttl / 5, 1.0), "max_clock_skew_s": 0.05}
        config = {"store": {"redis_url": self.url, "prefix": self.prefix},
                  "collector": {"jitter_pct": 2, "concurrency": 256, "sharding": sharding}, "targets": targets}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.config = load_config(self.config_path)

    def now(self) -> float:
        sec, usec = self.client.time()
        return sec + usec / 1e6

    def start(self, rid: str) -> None:
        port = free_port()
        env = dict(os.environ, HULK_OPS_REPLICA=rid)
        log = open(self.workdir / f"{rid}.log", "ab")
        self.procs[rid] = subprocess.Popen(
            [sys.executable, "-m", "hulk_ops", "collect", "--config", str(self.config_path),
             "--metrics-port", str(port), "--log-level", "WARNING"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ports[rid] = port

    def active(self) -> set[str]:
        now = self.now()
        out = set()
        keys = Keys(self.prefix)
        for rid in self.client.smembers(keys.shard_members):
            raw = self.client.get(keys.shard_member(rid.decode()))
            if raw and float(orjson.loads(raw)["activate_at"]) <= now:
                out.add(rid.decode())
        return out

    def wait_active(self, want: set[str], timeout: float) -> float:
        started = time.monotonic()
        while self.active() != want:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"replicas not all active after {timeout:.0f} s: {sorted(self.active())}")
            time.sleep(0.5)
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.client.close()
        self.redis_proc.terminate()
        self.redis_proc.wait(10)


def run(args: argparse.Namespace) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the private Redis holds one socket per target
    workdir = Path(tempfile.mkdtemp(prefix="hulk-bench-scaling-"))
    bench = Bench(args, workdir)
    interval, names = args.interval, [t.name for t in bench.config.targets]
    replicas = [f"c{i:02d}" for i in range(args.replicas)]
    figures: dict = {"replicas": args.replicas, "targets": args.targets, "interval_s": interval,
                     "membership_ttl_s": args.ttl, "handover_s": bench.config.collector.sharding.handover_s}
    try:
        t0 = time.monotonic()
        for rid in replicas:
            bench.start(rid)
        figures["start_s"] = round(bench.wait_active(set(replicas), 300), 1)
        time.sleep(2 * interval)  # the first cycles open one connection per target
        cpu0 = {rid: cpu_seconds(p.pid) for rid, p in bench.procs.items()}
        start = bench.now()
        time.sleep(args.cycles * interval)
        end = bench.now()
        cpu1 = {rid: cpu_seconds(p.pid) for rid, p in bench.procs.items()}
        counts = {rid: owned(bench.ports[rid], rid) for rid in replicas}
        expected = {rid: n for rid, n in sorted(_count(assign(names, replicas)).items())}
        result = audit(bench.client, Keys(bench.prefix), bench.config.targets, start, end)
        probes = result.slots - len(result.missing)
        figures.update(
            owned=counts, owned_hrw=expected, owned_min=min(counts.values()), owned_max=max(counts.values()),
            owned_stdev=round(statistics.pstdev(counts.values()), 1),
            steady_slots=result.slots, steady_doubles=len(result.doubles), steady_missing=len(result.missing),
            cpu_ms_per_probe=round(1000 * sum(cpu1[r] - cpu0[r] for r in replicas) / max(1, probes), 3),
            cpu_cores=round(sum(cpu1[r] - cpu0[r] for r in replicas) / (end - start), 2),
        )
        # -- kill -9 one replica; how long until each of its targets is probed by another?
        victim = replicas[0]
        orphans = [t for t, r in assign(names, replicas).items() if r == victim]
        killed_at = bench.now()
        bench.procs[victim].send_signal(signal.SIGKILL)
        bench.procs[victim].wait(10)
        time.sleep(2 * interval + args.ttl + 3)
        keys = Keys(bench.prefix)
        after = []
        for t in orphans:
            times = [ts - killed_at for ts in probe_times(bench.client, keys, t, killed_at, killed_at + 4 * interval)
                     if ts > killed_at]
            after.append(min(times) if times else float("inf"))
        finite = sorted(a for a in after if a != float("inf"))
        figures.update(
            takeover_targets=len(orphans), takeover_never=len(after) - len(finite),
            takeover_median_s=round(statistics.median(finite), 2) if finite else None,
            takeover_p99_s=round(finite[int(0.99 * (len(finite) - 1))], 2) if finite else None,
            takeover_max_s=round(finite[-1], 2) if finite else None,
            takeover_within_2_intervals=sum(1 for a in after if a < 2 * interval),
        )
        survivors = replicas[1:]
        end2 = bench.now()
        gaps = {t: (killed_at - 1.0, killed_at + 2 * interval) for t in orphans}
        after_kill = audit(bench.client, keys, bench.config.targets, start, end2, allowed_gaps=gaps)
        figures.update(kill_window_slots=after_kill.slots, kill_window_doubles=len(after_kill.doubles),
                       kill_window_missing=len(after_kill.missing),
                       owned_after_kill={r: owned(bench.ports[r], r) for r in survivors})
        figures["wall_s"] = round(time.monotonic() - t0, 1)
    finally:
        bench.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        shutil.rmtree(workdir, ignore_errors=True)
    figures["machine"] = f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    return figures


def _count(mapping: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in mapping.values():
        out[value] = out.get(value, 0) + 1
    return out


def markdown(f: dict, command: str) -> str:
    per = f["targets"] / f["replicas"]
    return "\n".join([
        f"Command: `{command}` ({f['machine']}, shared with other work; wall {f['wall_s']} s).",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| replicas x targets, interval | {f['replicas']} x {f['targets']}, {f['interval_s']} s "
        f"(membership TTL {f['membership_ttl_s']} s, handover {f['handover_s']} s) |",
        f"| all replicas active after start | {f['start_s']} s |",
        f"| targets owned per replica (ideal {per:.0f}) | min {f['owned_min']:.0f}, max {f['owned_max']:.0f}, "
        f"stdev {f['owned_stdev']} (HRW expects the same split: {list(f['owned_hrw'].values())}) |",
        f"| steady window: slots audited | {f['steady_slots']} |",
        f"| steady window: probed twice / skipped | {f['steady_doubles']} / {f['steady_missing']} |",
        f"| CPU of all replicas | {f['cpu_cores']} cores, {f['cpu_ms_per_probe']} ms per probe |",
        f"| kill -9 of one replica: its targets | {f['takeover_targets']} |",
        f"| taken over within 2 intervals | {f['takeover_within_2_intervals']} "
        f"(median {f['takeover_median_s']} s, p99 {f['takeover_p99_s']} s, max {f['takeover_max_s']} s, "
        f"never {f['takeover_never']}) |",
        f"| window incl. the kill: slots / twice / skipped outside the crash | {f['kill_window_slots']} / "
        f"{f['kill_window_doubles']} / {f['kill_window_missing']} |",
    ])


def write_docs(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if BEGIN not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--ttl", type=float, default=3.0, help="membership TTL (sync = ttl / 5)")
    parser.add_argument("--handover", type=float, default=None, help="handover_s (default: 2 x sync)")
    parser.add_argument("--cycles", type=int, default=3, help="steady cycles audited")
    parser.add_argument("--write-docs", action="store_true", help="put the figures into docs/scaling.md")
    args = parser.parse_args(argv)
    figures = run(args)
    command = "python -m bench.scaling " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(figures, command.strip())
    print(text)
    print(json.dumps(figures, indent=1))
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
