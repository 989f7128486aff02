"""The collector end to end on real servers: history and events really land in Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import redis

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.entrypoints.service import run_collector
from sandbox.services import free_port


def targets(services, blackhole: int, closed_port: int) -> list[dict]:
    return [
        {"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url, "interval_s": 1},
        {"name": "db", "kind": "postgres", "url": services.endpoints["postgres"].url, "interval_s": 1,
         "depends_on": ["cache"]},
        {"name": "bus", "kind": "nats", "url": services.endpoints["nats"].url, "interval_s": 1},
        {"name": "hole", "kind": "redis", "url": f"redis://127.0.0.1:{blackhole}", "interval_s": 1,
         "timeout_s": 0.5},
        {"name": "gone", "kind": "nats", "url": f"nats://127.0.0.1:{closed_port}", "interval_s": 1},
    ]


async def test_collector_writes_latest_history_events_and_metrics(
    services, write_config, blackhole, closed_port, store_redis_url, store_prefix
) -> None:
    path = write_config(targets(services, blackhole, closed_port), collector={"breaker": {"failures": 100}})
    config = load_config(path)
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=port, stop=stop))
    await asyncio.sleep(3.6)
    metrics_text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    )
    stop.set()
    collector = await asyncio.wait_for(task, 5)

    client = redis.Redis.from_url(store_redis_url)
    keys = Keys(store_prefix)
    latest = {k.decode(): orjson.loads(v) for k, v in client.hgetall(keys.latest).items()}
    assert {n: latest[n]["status"] for n in latest} == {
        "cache": "up", "db": "up", "bus": "up", "hole": "down", "gone": "down"}
    assert latest["hole"]["error"] == "timed out after 0.5 s"
    assert latest["gone"]["error"] == f"connection refused (127.0.0.1:{closed_port})"

    model = ReadModel(config, client)
    now = time.time()
    for name in ("cache", "db", "bus"):
        history = model.history(name, now - 60, now + 1)
        # first run within the first second, then one per second: the blackhole delays nobody
        assert len(history) >= 3, (name, len(history))
        assert set(history["status"]) == {0}
    assert collector.scheduler.max_lag < 0.25
    hole = model.history("hole", now - 60, now + 1)
    assert len(hole) >= 3 and set(hole["status"]) == {2}
    assert model.metric_history("cache", "used_memory_bytes", now - 60, now + 1)["value"].min() > 0

    events = model.events(50)
    downs = {e.fields["target"]: e.fields for e in events if e.fields["current"] == "down"}
    assert set(downs) == {"hole", "gone"}
    assert downs["hole"]["error"] == "timed out after 0.5 s"
    assert not [e for e in events if e.fields["target"] in ("cache", "db", "bus")]  # first "up" is not news
    assert 'hulk_ops_probes_total{kind="redis",status="up",target="cache"}' in metrics_text
    assert 'hulk_ops_probe_duration_seconds_bucket{kind="nats",le=' in metrics_text
    assert 'hulk_ops_target_state{kind="nats",state="down",target="gone"} 1.0' in metrics_text
    assert 'hulk_ops_probe_last_duration_seconds{kind="redis",target="cache"}' in metrics_text
    assert 'hulk_ops_breaker_open{target="hole"}' in metrics_text
    assert "hulk_ops_cycle_lag_seconds" in metrics_text
    heartbeat = model.collectors()
    assert heartbeat and heartbeat[0].info["targets"] == 5 and heartbeat[0].info["stopped"] is True
    client.close()


def test_sigterm_stops_the_collector_within_two_seconds(services, write_config, blackhole, store_redis_url,
                                                       store_prefix) -> None:
    path = write_config(targets(services, blackhole, free_port()))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hulk_ops", "collect", "--config", str(path), "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    client = redis.Redis.from_url(store_redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.hlen(Keys(store_prefix).latest) < 5:
            time.sleep(0.1)
        assert client.hlen(Keys(store_prefix).latest) == 5
        time.sleep(0.7)  # the blackholed probe is in flight most of the time
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        client.close()
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert took < 2.0, took
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    stopped = [line for line in lines if line["event"] == "collector_stopped"]
    assert stopped and stopped[0]["unflushed"] == 0
    assert not [line for line in lines if line["level"] == "error"]
