"""The generic http and tcp probes against real local servers (aiohttp, asyncio streams)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from hulk_ops.core.config import parse_config
from hulk_ops.core.model import ProbeResult
from hulk_ops.entrypoints.bootstrap import build_probe

pytest_plugins = ["tests.fixtures_prom"]

BODY = "service: green\nchecks: 12 passed\n"
TOKEN = "Bearer s3cret-token-value"


async def check(**target: Any) -> ProbeResult:
    target = {"name": "t", "interval_s": 5, "timeout_s": 2.0, **target}
    config = parse_config(yaml.safe_dump({"targets": [target]}))
    probe = build_probe(config, config.targets[0])
    try:
        return await probe.check()
    finally:
        await probe.close()


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text=BODY)

    async def unavailable(_request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    async def stall(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="too late")

    async def private(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != TOKEN:
            return web.Response(status=401, text="who are you?")
        return web.Response(text="welcome")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/stall", stall)
    app.router.add_get("/private", private)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- http ----------------------------------------------------------------------------------------
async def test_http_up_with_status_and_body_size(site: str) -> None:
    result = await check(kind="http", url=f"{site}/ok", expect_body="12 passed")
    assert result.status == "up", result.error
    assert result.metrics == {"status_code": 200.0, "body_bytes": float(len(BODY))}
    assert 0 < result.latency_ms < 2000
    assert "aiohttp" in (result.version or "")


async def test_http_wrong_status_is_down_with_a_clear_error(site: str) -> None:
    result = await check(kind="http", url=f"{site}/unavailable")
    assert result.status == "down"
    assert result.error == "expected status 200, got 503 Service Unavailable"


async def test_http_a_listed_status_is_accepted(site: str) -> None:
    result = await check(kind="http", url=f"{site}/unavailable", expect_status=[200, 503])
    assert result.status == "up", result.error
    assert result.metrics["status_code"] == 503


async def test_http_missing_body_substring_is_down(site: str) -> None:
    result = await check(kind="http", url=f"{site}/ok", expect_body="all systems go")
    assert result.status == "down"
    assert result.error.startswith("expected the body to contain 'all systems go' (body starts 'service: green")


async def test_http_body_regex(site: str) -> None:
    good = await check(kind="http", url=f"{site}/ok", expect_body={"regex": r"checks: \d+ passed"})
    bad = await check(kind="http", url=f"{site}/ok", expect_body={"regex": r"checks: \d+ failed"})
    assert good.status == "up", good.error
    assert bad.status == "down"
    assert bad.error.startswith(r"body does not match /checks: \d+ failed/")


async def test_http_secret_headers_are_sent_and_never_shown(site: str) -> None:
    allowed = await check(kind="http", url=f"{site}/private", headers={"Authorization": TOKEN})
    refused = await check(kind="http", url=f"{site}/private", headers={"Authorization": "Bearer wrong-one"})
    assert allowed.status == "up", allowed.error
    assert refused.status == "down" and refused.error == "expected status 200, got 401 Unauthorized"
    config = parse_config(yaml.safe_dump({"targets": [
        {"name": "t", "kind": "http", "url": f"{site}/private", "headers": {"Authorization": TOKEN}}]}))
    assert "s3cret" not in repr(config.targets[0])
    assert TOKEN in config.secrets()


async def test_http_stall_is_down_within_timeout(site: str) -> None:
    started = time.perf_counter()
    result = await check(kind="http", url=f"{site}/stall", timeout_s=1.0)
    elapsed = time.perf_counter() - started
    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 0.9 <= elapsed <= 1.0 + 1.0


async def test_http_refused(closed_port: int) -> None:
    result = await check(kind="http", url=f"http://127.0.0.1:{closed_port}/")
    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{closed_port})"


# -- tcp -----------------------------------------------------------------------------------------
async def test_tcp_up_measures_the_connect(site: str) -> None:
    port = int(site.rsplit(":", 1)[1])
    result = await check(kind="tcp", url=f"tcp://127.0.0.1:{port}")
    assert result.status == "up", result.error
    assert 0 < result.latency_ms < 1000


async def test_tcp_refused(closed_port: int) -> None:
    result = await check(kind="tcp", url=f"tcp://127.0.0.1:{closed_port}")
    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{closed_port})"


async def test_tcp_connect_timeout(full_backlog: int) -> None:
    started = time.perf_counter()
    result = await check(kind="tcp", url=f"tcp://127.0.0.1:{full_backlog}", timeout_s=1.0)
    elapsed = time.perf_counter() - started
    assert result.status == "down" and result.error == "timed out after 1.0 s"
    assert 0.9 <= elapsed <= 1.0 + 1.0


async def test_tcp_blackhole_with_expected_banner_times_out(blackhole: int) -> None:
    started = time.perf_counter()
    result = await check(kind="tcp", url=f"tcp://127.0.0.1:{blackhole}", timeout_s=1.0, expect="SSH-")
    elapsed = time.perf_counter() - started
    assert result.status == "down" and result.error == "timed out after 1.0 s"
    assert 0.9 <= elapsed <= 1.0 + 1.0


async def test_tcp_banner() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        if line == b"PING\r\n":  # the answer comes in two pieces: the probe must wait for the rest
            writer.write(b"+PO")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"NG\r\n")
        else:
            writer.write(b"-ERR unknown\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        good = await check(kind="tcp", url=f"tcp://127.0.0.1:{port}", send="PING\r\n", expect="+PONG")
        bad = await check(kind="tcp", url=f"tcp://127.0.0.1:{port}", send="HELLO\r\n", expect="+PONG")
    finally:
        server.close()
        await server.wait_closed()
    assert good.status == "up", good.error
    assert good.metrics == {"banner_bytes": 7.0}
    assert bad.status == "down"
    assert bad.error == f"expected '+PONG' from 127.0.0.1:{port}, got '-ERR unknown'"


async def _raw_server(answer: bytes) -> asyncio.Server:
    """A TCP server that reads the request and answers `answer` (not necessarily HTTP), then closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _http_check_raw(answer: bytes) -> tuple[object, int]:
    """The http probe's result against a server that sends `answer` and closes; and the server's port."""
    server = await _raw_server(answer)
    port = server.sockets[0].getsockname()[1]
    try:
        return await check(kind="http", url=f"http://127.0.0.1:{port}/"), port
    finally:
        server.close()
        await server.wait_closed()


async def test_http_a_non_http_answer_is_down_with_one_line() -> None:
    result, port = await _http_check_raw(b"HTTP/1.1 2x0 NOPE\r\nfoo\r\n\r\n")
    assert result.status == "down"
    assert result.error.startswith(f"unreadable answer from 127.0.0.1:{port}: "), result.error
    assert "\n" not in result.error


async def test_http_closed_without_an_answer() -> None:
    result, port = await _http_check_raw(b"")
    assert result.status == "down"
    assert result.error == f"connection closed by peer (127.0.0.1:{port})"


async def test_http_tls_verify_and_its_opt_out(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    await asyncio.to_thread(subprocess.run, ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            str(tmp_path / "key"), "-out", str(tmp_path / "cert"), "-days", "1", "-subj",
                            "/CN=localhost"], check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert", tmp_path / "key")

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text=BODY)

    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/ok"
    try:
        verified = await check(kind="http", url=url)
        trusted = await check(kind="http", url=url, verify_tls=False)
    finally:
        await runner.cleanup()
    assert verified.status == "down"
    port = url.split(":")[2].split("/")[0]
    assert verified.error == f"certificate verify failed: self-signed certificate (127.0.0.1:{port})"
    assert trusted.status == "degraded"  # reachable; its one-day certificate is under the 14-day rule
    assert trusted.error.startswith("tls.cert_expiry_days = "), trusted.error
    assert {k: v for k, v in trusted.metrics.items() if not k.startswith("tls.")} == {
        "status_code": 200.0, "body_bytes": float(len(BODY))}
    assert 0.9 < trusted.metrics["tls.cert_expiry_days"] <= 1  # the certificate is made for one day
