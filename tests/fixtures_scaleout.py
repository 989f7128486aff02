"""Fixtures for the sharding tests: `hulk-ops collect` replicas as real subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from hulk_ops.collectors.codec import Keys
from sandbox.services import free_port

HULK_OPS = [sys.executable, "-m", "hulk_ops"]


class Replicas:
    """Start, kill and read `hulk-ops collect` replicas sharing one config."""

    def __init__(self, config: Path, redis_url: str, prefix: str, logs: Path) -> None:
        self.config = config
        self.redis = redis.Redis.from_url(redis_url)
        self.prefix = prefix
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def start(self, replica: str) -> None:
        port = free_port()
        env = dict(os.environ, HULK_OPS_REPLICA=replica)
        log = open(self.logs / f"{replica}.log", "ab")
        self.procs[replica] = subprocess.Popen(
            [*HULK_OPS, "collect", "--config", str(self.config), "--metrics-port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ports[replica] = port

    def kill(self, replica: str) -> None:
        self.procs[replica].send_signal(signal.SIGKILL)
        self.procs[replica].wait(5)

    def terminate(self, replica: str, timeout: float = 10.0) -> float:
        """SIGTERM and wait; returns how long the graceful stop took."""
        started = time.monotonic()
        self.procs[replica].send_signal(signal.SIGTERM)
        self.procs[replica].wait(timeout)
        return time.monotonic() - started

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def server_time(self) -> float:
        sec, usec = self.redis.time()
        return sec + usec / 1e6

    def records(self) -> dict[str, dict]:
        """The membership records in the engine, by replica id."""
        out = {}
        keys = Keys(self.prefix)
        for rid in self.redis.smembers(keys.shard_members):
            raw = self.redis.get(keys.shard_member(rid.decode()))
            if raw:
                record = orjson.loads(raw)
                out[record["id"]] = record
        return out

    def wait_active(self, replicas: set[str], timeout: float = 40.0) -> float:
        """Wait until exactly these replicas are members and active; returns the latest activation time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.records()
            now = self.server_time()
            if set(records) == replicas and all(float(r["activate_at"]) <= now for r in records.values()):
                return max(float(r["activate_at"]) for r in records.values())
            for name, proc in self.procs.items():
                if name in replicas and proc.poll() is not None:
                    raise AssertionError(f"replica {name} exited with {proc.returncode}: {self.log_tail(name)}")
            time.sleep(0.1)
        raise AssertionError(f"members {sorted(self.records())} never became {sorted(replicas)}")

    def metrics_text(self, replica: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[replica]}/metrics", timeout=2) as resp:
            return resp.read().decode()

    def overruns(self, replica: str) -> float:
        """Runs this replica let go because it was starved: the target's previous run was still going,
        or the probe started outside the slot it had claimed."""
        text = self.metrics_text(replica)
        skipped = re.findall(r"^hulk_ops_probes_skipped_total\{[^}]*\} (\S+)$", text, re.M)
        dropped = re.findall(r"^hulk_ops_shard_late_results_dropped_total (\S+)$", text, re.M)
        return sum(float(v) for v in [*skipped, *dropped])

    def owned_metric(self, replica: str) -> float:
        text = self.metrics_text(replica)
        match = re.search(rf'^hulk_ops_targets_owned\{{replica="{re.escape(replica)}"\}} (\S+)$', text, re.M)
        assert match, f"no hulk_ops_targets_owned for {replica} in /metrics"
        return float(match.group(1))

    def latest_replicas(self) -> dict[str, str]:
        """target -> replica that wrote its newest result."""
        raw = self.redis.hgetall(Keys(self.prefix).latest)
        return {k.decode(): orjson.loads(v)["details"].get("replica") for k, v in raw.items()}

    def heartbeats(self) -> dict[str, dict]:
        raw = self.redis.hgetall(Keys(self.prefix).collectors)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def log_tail(self, replica: str, lines: int = 15) -> str:
        text = (self.logs / f"{replica}.log").read_text(errors="replace").splitlines()
        return "\n".join(line for line in text if "MAINT_NOTIFICATIONS" not in line)[-3000:] if text else ""


@pytest.fixture
def replicas_factory(tmp_path: Path, store_redis_url: str, store_prefix: str) -> Iterator:
    made: list[Replicas] = []

    def make(config: Path) -> Replicas:
        reps = Replicas(config, store_redis_url, store_prefix, tmp_path)
        made.append(reps)
        return reps

    yield make
    for reps in made:
        reps.stop_all()
        reps.redis.close()
