"""Fixtures for hulk-ops watching itself: a webhook receiver, a private redis-server, an in-memory tracer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sandbox.services import PrivateRedis, free_port


@dataclass
class Received:
    path: str
    status: int  # what the receiver answered
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class WebhookReceiver:
    """An aiohttp server on loopback (own thread and loop) that records every POST and answers `status`."""

    port: int = 0
    status: int = 200
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str | None = None, answered: int | None = 200) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received
                    if (path is None or r.path == path) and (answered is None or r.status == answered)]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = self.status
        with self._lock:
            self.received.append(Received(request.path, status, dict(request.headers), body, time.time()))
        return web.json_response({"ok": status < 300}, status=status)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=free_port())
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: dict[str, web.AppRunner] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", receiver._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
        runner_box["runner"] = runner
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
    thread.start()
    assert ready.wait(10), "webhook receiver did not start"
    yield receiver
    asyncio.run_coroutine_threadsafe(runner_box["runner"].cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server (no persistence) that a test can stop and start again on the same port."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spans() -> Iterator[Any]:
    """An SDK tracer provider with an in-memory exporter, installed for hulk-ops' spans (restored after)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from hulk_ops.observe import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    yield exporter
    tracing.install(previous)
    provider.shutdown()
