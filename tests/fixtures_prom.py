"""Fixtures for the prometheus / http / tcp probe tests (load with `pytest_plugins`).

`exporter`: a prometheus_client /metrics server with known values (`exporter.value`,
`exporter.shards`). `prometheus`: one private, real Prometheus per test module (1 s scrape and rule
interval) scraping that exporter and a dead target, with an alert that fires at once; it is ready
(both targets scraped, alert firing) when the fixture returns. `bare_prometheus`: a fresh empty
Prometheus of the test's own (to stop it). `full_backlog`: a port whose accept queue is full.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from sandbox.services import Endpoint, Services, free_port

TEST_VALUE = 42.5
SHARDS = {"a": 1.0, "b": 2.0}
READY_TIMEOUT_S = 20.0

RULES = """
groups:
  - name: hulk-ops-test
    rules:
      - alert: HulkOpsTestAlwaysFiring
        expr: vector(1)
        labels: {severity: warning, team: ops}
        annotations: {summary: "the test alert fires at once"}
"""


@dataclass
class Exporter:
    port: int
    registry: CollectorRegistry
    value: float = TEST_VALUE
    shards: dict[str, float] = field(default_factory=lambda: dict(SHARDS))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class PromServer:
    endpoint: Endpoint
    exporter: Exporter
    dead_address: str

    @property
    def url(self) -> str:
        return self.endpoint.url


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    Gauge("hulk_ops_test_value", "a known value", registry=registry).set(TEST_VALUE)
    shard = Gauge("hulk_ops_test_shard", "one value per shard", ["shard"], registry=registry)
    for name, value in SHARDS.items():
        shard.labels(name).set(value)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield Exporter(port, registry)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)


def prometheus_config(scrapes: dict[str, str], rules_path: Path | None) -> str:
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "  evaluation_interval: 1s"]
    if rules_path is not None:
        lines.append(f"rule_files: ['{rules_path}']")
    lines.append("scrape_configs:")
    for job, address in scrapes.items():
        lines += [f"  - job_name: {job}", f"    static_configs: [{{targets: ['{address}']}}]"]
    return "\n".join(lines) + "\n"


def wait_ready(url: str, expect_targets: int, expect_alert: bool, timeout: float = READY_TIMEOUT_S) -> None:
    """Until every scrape target has a health other than unknown (and the alert fires)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            targets = requests.get(f"{url}/api/v1/targets", timeout=1).json()["data"]["activeTargets"]
            alerts = requests.get(f"{url}/api/v1/alerts", timeout=1).json()["data"]["alerts"]
            known = [t for t in targets if t["health"] != "unknown"]
            firing = [a for a in alerts if a["state"] == "firing"]
            last = f"{len(known)}/{expect_targets} targets scraped, {len(firing)} alerts firing"
            if len(known) >= expect_targets and (firing or not expect_alert):
                return
        except (requests.RequestException, KeyError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"Prometheus at {url} not ready within {timeout:.0f} s: {last}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: Exporter) -> Iterator[PromServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = workdir / "rules.yml"
    rules.write_text(RULES, encoding="utf-8")
    dead = f"127.0.0.1:{free_port()}"
    config = prometheus_config({"exporter": exporter.address, "dead": dead}, rules)
    with Services(workdir, reuse=False) as services:
        endpoint = services.prometheus(config)
        wait_ready(endpoint.url, expect_targets=2, expect_alert=True)
        yield PromServer(endpoint, exporter, dead)


@pytest.fixture
def bare_prometheus(tmp_path: Path) -> Iterator[tuple[Services, Endpoint]]:
    """A Prometheus with nothing to scrape, owned by the test: `services.stop()` really stops it."""
    with Services(tmp_path, reuse=False) as services:
        endpoint = services.prometheus(prometheus_config({}, None))
        wait_ready(endpoint.url, expect_targets=0, expect_alert=False)
        yield services, endpoint


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full: new connections are never established."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(client)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for client in fillers:
            client.close()
        server.close()
