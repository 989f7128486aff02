"""The collector's /healthz fails while its event loop is stuck; /metrics (a thread) keeps answering."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from hulk_ops.collectors import metrics_server
from hulk_ops.core.config import load_config
from hulk_ops.entrypoints.service import run_collector
from sandbox.services import free_port


async def healthz_becomes(client: httpx.AsyncClient, status: str, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            answer = await client.get("/healthz")
            if answer.json().get("status") == status or time.monotonic() > deadline:
                return answer
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_healthz_turns_503_when_the_event_loop_is_stuck(write_config, redis_server, monkeypatch) -> None:
    monkeypatch.setattr(metrics_server, "STUCK_S", 1.5)
    config = load_config(write_config([{"name": "cache", "kind": "redis", "url": redis_server.url, "interval_s": 1}]))
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=port, stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            ok = await healthz_becomes(client, "ok", 10)
            assert ok.status_code == 200 and ok.json()["status"] == "ok"
            answers: dict[str, httpx.Response] = {}

            def probe_while_stuck() -> None:
                time.sleep(2.5)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as sync:
                    answers["healthz"], answers["metrics"] = sync.get("/healthz"), sync.get("/metrics")

            prober = threading.Thread(target=probe_while_stuck)
            prober.start()
            time.sleep(3.5)  # noqa: ASYNC251 - the point: this blocks the collector's event loop
            prober.join()
            assert answers["healthz"].status_code == 503 and answers["healthz"].json()["status"] == "stuck"
            assert answers["metrics"].status_code == 200 and "hulk_ops_probes_total" in answers["metrics"].text
            back = await healthz_becomes(client, "ok", 5)
            assert back.status_code == 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
