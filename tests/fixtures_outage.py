"""Fixtures for the store-outage and shutdown tests: a private Redis that can really go away, and
`hulk-ops collect` / `hulk-ops dashboard` as real subprocesses, started the way a user starts them.

The private Redis (sandbox.services.PrivateRedis, durable) keeps its data in its own directory (append-only
file, fsync'd at shutdown), so stopping and starting it again on the same port loses nothing that was written
before the stop.
Never the shared Redis: it serves CI and the other tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.services import PrivateRedis, ServiceError, free_port, port_open

HULK_OPS = [sys.executable, "-m", "hulk_ops"]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server with an append-only file: stop/start keeps its data, freeze() hangs it."""
    data = tmp_path / "private-redis"
    data.mkdir()
    try:
        server = PrivateRedis(data, durable=True)
    except ServiceError as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()  # thaws it first if a test froze it


class Process:
    """A `hulk-ops ...` command as a user runs it; stderr/stdout go to a log file read afterwards."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        out = open(log, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([*HULK_OPS, *argv], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)

    def terminate(self, timeout: float = 10.0) -> float:
        """SIGTERM; returns the seconds until the process had exited."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - sent

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def lines(self) -> list[dict]:
        """The JSON log lines (structlog) the process wrote."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    out.append(orjson.loads(line))
        return out


class CollectorProcess(Process):
    def __init__(self, config: Path, log: Path) -> None:
        self.metrics_port = free_port()
        super().__init__(["collect", "--config", str(config), "--metrics-port", str(self.metrics_port)], log)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Its /metrics as {(sample name, sorted labels): value}."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), float("nan"))

    def probes_by_target(self) -> dict[str, float]:
        """hulk_ops_probes_total summed over statuses, per target."""
        out: dict[str, float] = {}
        for (name, labels), value in self.metrics().items():
            if name == "hulk_ops_probes_total":
                target = dict(labels)["target"]
                out[target] = out.get(target, 0.0) + value
        return out


@pytest.fixture
def hulk_process(tmp_path: Path) -> Iterator:
    """hulk_process(argv, log name) -> a running `hulk-ops <argv>`; killed at teardown if still running."""
    started: list[Process] = []

    def _start(argv: list[str], name: str) -> Process:
        proc = Process(argv, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.kill()


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator:
    """collector_process(config) -> a running `hulk-ops collect`; killed at teardown if still running."""
    started: list[CollectorProcess] = []

    def _start(config: Path) -> CollectorProcess:
        proc = CollectorProcess(config, tmp_path / f"collector-{len(started)}.log")
        started.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not port_open(proc.metrics_port):
            if proc.proc.poll() is not None:
                raise RuntimeError(f"hulk-ops collect exited: {proc.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return proc

    yield _start
    for proc in started:
        proc.kill()
