"""Shared fixtures. Integration tests talk to real servers: reused when running, private otherwise.

Everything a test creates is unique (a Redis key prefix in db 15, stream names, schemas) and is
removed afterwards: CI and other runs share these servers.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from sandbox.services import Endpoint, Services

TEST_REDIS_DB = 15


TIERS = ("unit", "integration", "e2e")


def _tier(item: pytest.Item) -> int:
    parts = Path(str(item.fspath)).parts
    return next((i for i, tier in enumerate(TIERS) if tier in parts), len(TIERS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Directory decides the tier (tests/unit -> unit, ...); tiers run in order: fast feedback first, and the
    browser tests (Playwright keeps an event loop in the main thread while open) last."""
    for item in items:
        tier = _tier(item)
        if tier < len(TIERS):
            item.add_marker(getattr(pytest.mark, TIERS[tier]))
    items.sort(key=_tier)  # stable: keeps file order within a tier


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with Services(tmp_path_factory.mktemp("services")) as svc:
        svc.core()
        yield svc


@pytest.fixture(scope="session")
def redis_server(services: Services) -> Endpoint:
    return services.endpoints["redis"]


@pytest.fixture(scope="session")
def postgres_server(services: Services) -> Endpoint:
    return services.endpoints["postgres"]


@pytest.fixture(scope="session")
def nats_server(services: Services) -> Endpoint:
    return services.endpoints["nats"]


@pytest.fixture(scope="session")
def mysql_server(services: Services) -> Endpoint:
    return services.mariadb()


@pytest.fixture
def store_redis_url(redis_server: Endpoint) -> str:
    return f"{redis_server.url.rstrip('/')}/{TEST_REDIS_DB}"


@pytest.fixture
def store_prefix(store_redis_url: str) -> Iterator[str]:
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(store_redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def write_config(tmp_path: Path, store_redis_url: str, store_prefix: str):
    """write_config(targets, **sections) -> path of a YAML config using this test's private store."""

    def _write(targets: list[dict[str, Any]], **sections: Any) -> Path:
        data: dict[str, Any] = {"store": {"redis_url": store_redis_url, "prefix": store_prefix}}
        data.update(sections)
        data["targets"] = targets
        path = tmp_path / f"hulk-ops-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port that accepts TCP connections (kernel backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def spawn_server():
    """spawn_server(argv, port, what) -> Popen: a private server process, stopped at teardown."""
    import subprocess

    from sandbox.services import stop_process, wait_port

    started: list[subprocess.Popen[bytes]] = []

    def _spawn(argv: list[str], port: int, what: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        wait_port(port, 15, proc, what)
        return proc

    yield _spawn
    for proc in started:
        stop_process(proc)
