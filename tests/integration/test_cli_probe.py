"""`hulk-ops probe` as an on-call engineer uses it: real servers up, dead ones down, bounded time."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from hulk_ops.core.model import PUBLIC_FIELDS


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hulk_ops", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_probe_json_reports_real_servers_up_and_dead_ones_down(services, write_config, closed_port,
                                                               blackhole) -> None:
    path = write_config([
        {"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url},
        {"name": "db", "kind": "postgres", "url": services.endpoints["postgres"].url},
        {"name": "bus", "kind": "nats", "url": services.endpoints["nats"].url},
        {"name": "dead-db", "kind": "postgres", "url": f"postgresql://postgres@127.0.0.1:{closed_port}/x"},
        {"name": "hung-bus", "kind": "nats", "url": f"nats://127.0.0.1:{blackhole}", "timeout_s": 2},
    ])
    started = time.monotonic()
    proc = run("probe", "--config", str(path), "--json")
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [tuple(r) for r in rows] == [PUBLIC_FIELDS] * 5
    by_name = {r["target"]: r for r in rows}
    assert {n: r["status"] for n, r in by_name.items()} == {
        "cache": "up", "db": "up", "bus": "up", "dead-db": "down", "hung-bus": "down"}
    assert by_name["dead-db"]["error"] == f"connection refused (127.0.0.1:{closed_port})"
    assert by_name["hung-bus"]["error"] == "timed out after 2.0 s"
    assert by_name["cache"]["observed_at"].endswith("Z")
    # the whole command, interpreter start-up included, on a machine shared with other test runs
    assert took < 30, took

    table = run("probe", "--config", str(path))
    assert table.returncode == 1
    assert "dead-db" in table.stdout and "DOWN" in table.stdout and "connection refused" in table.stdout
    assert "3 up, 0 degraded, 2 down" in table.stdout


def test_probe_exit_codes(services, write_config) -> None:
    path = write_config([{"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url},
                         {"name": "bus", "kind": "nats", "url": "nats://127.0.0.1:1"}])
    only_up = run("probe", "--config", str(path), "--target", "cache", "--json")
    assert only_up.returncode == 0, only_up.stderr
    assert len(only_up.stdout.splitlines()) == 1
    unknown = run("probe", "--config", str(path), "--target", "nope")
    assert unknown.returncode == 2
    assert "unknown target(s): nope" in unknown.stderr
    bad_flag = run("probe", "--config", str(path), "--colour")
    assert bad_flag.returncode == 2


async def test_probing_finishes_within_the_largest_timeout_plus_a_second(services, write_config, blackhole) -> None:
    """The bound an on-call engineer relies on, measured without the interpreter's start-up."""
    import asyncio

    from hulk_ops.core.config import load_config
    from hulk_ops.entrypoints.probe_once import probe_once

    config = load_config(write_config([
        {"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url},
        {"name": "hung-db", "kind": "postgres", "url": f"postgresql://postgres@127.0.0.1:{blackhole}/x",
         "timeout_s": 2},
        {"name": "hung-bus", "kind": "nats", "url": f"nats://127.0.0.1:{blackhole}", "timeout_s": 1.5},
    ]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await probe_once(config, config.targets)
    took = loop.time() - started
    assert [r.status for r in results] == ["up", "down", "down"]
    assert took < 2.0 + 1.0, took
