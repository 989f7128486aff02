"""The read-only JSON API on real uvicorn over a store a real collector filled (private Redis prefix)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
from openapi_spec_validator import validate

from hulk_ops.actions.identity import new_token
from hulk_ops.api.app import build_app
from hulk_ops.core.config import Config, load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.entrypoints.service import run_collector
from sandbox.services import free_port, wait_port
from tests.waiting import await_for, wait_for

PASSWORD = "pw-canary-7c1e9"  # a test value that must never be served
STATIC = "static-read-token-3f9a0c"


@contextmanager
def served(config: Config) -> Iterator[str]:
    """Real uvicorn serving build_app(config) on a free loopback port, in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(config), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_port(port, 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def stack_config(write_config, closed_port: int, redis_url: str, user: dict[str, Any], **api: Any) -> Config:
    return load_config(write_config(
        [{"name": "cache", "kind": "redis", "url": redis_url, "interval_s": 5, "labels": {"team": "core"}},
         {"name": "gone", "kind": "redis", "url": f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0",
          "interval_s": 5, "runbook_url": "https://runbooks.example/gone"},
         {"name": "app", "kind": "tcp", "url": f"tcp://127.0.0.1:{closed_port}", "interval_s": 5,
          "depends_on": ["gone"]}],
        collector={"breaker": {"failures": 1000}, "jitter_pct": 0},
        auth={"users": [user]}, api={"tokens": [STATIC], **api}))


@pytest.fixture
def user_token() -> tuple[str, dict[str, Any]]:
    token_id, token, token_hash = new_token()
    return token, {"name": "ana", "role": "viewer", "token_id": token_id, "token_hash": token_hash}


async def collect(config: Config, seconds_until: Any) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
    try:
        assert await await_for(seconds_until, 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def check(doc: dict[str, Any], component: str, body: Any) -> None:
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
                                    ).validate(body)


def test_api_reads_the_store_behind_tokens(write_config, closed_port, redis_server, user_token) -> None:
    token, user = user_token
    config = stack_config(write_config, closed_port, redis_server.url, user)
    model = ReadModel(config)
    started = time.time()
    asyncio.run(collect(config, lambda: {v.name: v.status for v in model.target_views()} == {
        "cache": "up", "gone": "down", "app": "down"}))
    with served(config) as base:
        anonymous = httpx.get(f"{base}/api/v1/targets", timeout=5)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.json()["error"]["message"].startswith("authentication required")
        wrong = httpx.get(f"{base}/api/v1/targets", headers={"Authorization": "Bearer hko_0123456789abcdef_"
                                                                              + "x" * 43}, timeout=5)
        assert (wrong.status_code, wrong.json()["error"]["status"]) == (401, 401)
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}

        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        static = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {STATIC}"}, timeout=5)
        doc = http.get("/api/v1/openapi.json").json()
        validate(doc)

        listed = http.get("/api/v1/targets").json()
        assert {t["name"]: t["status"] for t in listed["targets"]} == {
            v.name: v.status for v in model.target_views()} == {"cache": "up", "gone": "down", "app": "down"}
        cache = next(t for t in listed["targets"] if t["name"] == "cache")
        assert cache["labels"] == {"team": "core"} and cache["latency_ms"] > 0 and cache["stale"] is False
        assert listed["freshness"]["collector_stale"] is False
        for item in listed["targets"]:
            check(doc, "TargetSummary", item)
        assert [t["name"] for t in static.get("/api/v1/targets", params={"status": "up"}).json()["targets"]] == [
            "cache"]

        detail = http.get("/api/v1/targets/cache").json()
        check(doc, "TargetDetail", detail)
        assert detail["latest"]["metrics"] == model.latest(["cache"])["cache"].metrics
        assert detail["latest"]["metrics"]["used_memory_bytes"] > 0
        gone = http.get("/api/v1/targets/gone")
        assert gone.json()["latest"]["error"] and gone.json()["runbook_url"] == "https://runbooks.example/gone"
        assert PASSWORD not in gone.text and "url" not in gone.json()
        missing = http.get("/api/v1/targets/nope")
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "no target named 'nope'"
        assert http.get("/api/v1/nothing").status_code == 404

        history = http.get("/api/v1/targets/cache/history", params={"window": "5m"}).json()
        check(doc, "History", history)
        assert history["samples"] >= 1 and {p["status"] for p in history["points"]} == {"up"}
        bad = http.get("/api/v1/targets/cache/history", params={"window": "soon"})
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("window:")

        incidents = http.get("/api/v1/incidents").json()
        (incident,) = incidents["open"]
        check(doc, "Incident", incident)
        assert (incident["root_cause"], incident["dependents"], incident["severity"]) == ("gone", ["app"], "critical")
        assert incident["error"] and PASSWORD not in str(incident)

        events = http.get("/api/v1/events", params={"since": str(started - 1)}).json()["events"]
        downs = {e["fields"]["target"] for e in events if e["fields"].get("current") == "down"}
        assert downs == {"gone", "app"}
        for item in events:
            check(doc, "Event", item)
        later = http.get("/api/v1/events", params={"since": "2100-01-01T00:00:00Z"}).json()
        assert later["events"] == []
        assert http.get("/api/v1/events", params={"since": "yesterday"}).status_code == 400
        assert len(http.get("/api/v1/events", params={"limit": "1"}).json()["events"]) == 1
        metrics = httpx.get(f"{base}/metrics", timeout=5).text  # Prometheus scrapes it without a token
        assert 'hulk_ops_api_requests_total{route="/api/v1/targets/{name}",status="404"} 1.0' in metrics
        assert 'hulk_ops_api_requests_total{route="/api/v1/targets",status="401"} 2.0' in metrics


def test_rate_limit_answers_429_per_token(write_config, closed_port, redis_server, user_token) -> None:
    token, user = user_token
    config = stack_config(write_config, closed_port, redis_server.url, user, rate_per_s=0.5, burst=3)
    with served(config) as base:
        user_codes = [httpx.get(f"{base}/api/v1/targets", headers={"Authorization": f"Bearer {token}"},
                                timeout=5) for _ in range(4)]
        assert [r.status_code for r in user_codes] == [200, 200, 200, 429]
        assert int(user_codes[-1].headers["retry-after"]) >= 1 and "rate limit" in user_codes[-1].json()["error"][
            "message"]
        other = httpx.get(f"{base}/api/v1/targets", headers={"Authorization": f"Bearer {STATIC}"}, timeout=5)
        assert other.status_code == 200  # another principal has its own bucket


def test_store_down_is_a_503_with_a_message(write_config, closed_port, store_prefix, user_token) -> None:
    token, user = user_token
    config = load_config(write_config([], auth={"users": [user]}).as_posix())
    config = config.model_copy(update={"store": config.store.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{closed_port}/0"})})
    with served(config) as base:
        answer = httpx.get(f"{base}/api/v1/targets", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 503
        assert answer.json()["error"]["message"].startswith(f"cannot read the store at redis://127.0.0.1:{closed_port}/0:")
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_cli_serves_until_sigterm(write_config, store_prefix) -> None:
    path = write_config([])
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "api", "--config", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_port(port, 20, proc, "hulk-ops api")
        answer = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5), 10)
        assert answer.status_code == 200 and answer.json()["targets"] == []  # no auth configured: open
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        logged = proc.stderr.read()
        assert '"event": "api_request"' in logged and '"principal": "anonymous"' in logged
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_port_is_a_usage_error(write_config, store_prefix) -> None:
    path = write_config([])
    done = subprocess.run([sys.executable, "-m", "hulk_ops", "api", "--config", str(path), "--port", "70000"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--port: 70000 is not a TCP port" in done.stderr
