"""Fuzzing every probe's response parsing: backends answering garbage, truncated frames, wrong JSON types.

- HTTP kinds (qdrant, kubernetes, runpod): the real simulator behind `MutatingProxy`, which passes each
  answer through a seeded mutation (leaves replaced by other types, huge or negative numbers, keys dropped,
  lists emptied, the body truncated or swapped for bytes, the status changed).
- prometheus, http: canned answers (a Prometheus envelope, a page) mutated the same way.
- redis, nats, neo4j, postgres, tcp: a loopback TCP server that answers with hypothesis bytes, some starting
  like the real protocol (RESP `$` bulk INFO, a NATS `INFO {` line, a Bolt version reply, PostgreSQL
  AuthenticationOk) and then going wrong.

Each check must return a ProbeResult (never raise), within its timeout plus a margin; a status other than up
carries an error; garbage from a wire protocol is down. Bounded: `HULK_FUZZ_PROBE_EXAMPLES` per kind (40).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import yaml
from aiohttp import ClientSession, ClientTimeout, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import load_config, parse_config
from hulk_ops.core.model import ProbeResult
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.probes import registry
from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator
from sandbox.qdrant_sim import QdrantSimulator
from sandbox.runpod_sim import RunpodSimulator
from sandbox.simbase import HttpSimulator

EXAMPLES = int(os.environ.get("HULK_FUZZ_PROBE_EXAMPLES", "40"))
TIMEOUT_S = 1.0
MARGIN_S = 1.5  # a loaded 2-core machine: the bound is timeout + this
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WEIRD = [None, True, -1, 0, 2**63, -(2**63), 10**400, 1e308, -1e308, "", "x" * 70_000, "NaN", "\u202e\x00é",
         [], {}, [None], {"": None}, "1", 3.5, [[[[[]]]]]]


# -- mutation --------------------------------------------------------------------------------------
def mutate_json(value: Any, rng: random.Random, rate: float) -> Any:
    """Randomly replace leaves and containers by values of another type; drop keys; empty lists."""
    if rng.random() < rate:
        return rng.choice(WEIRD) if rng.random() < 0.8 else mutate_json(rng.choice(WEIRD), rng, 0)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if rng.random() < rate / 2:
                continue  # dropped key
            out[k] = mutate_json(v, rng, rate)
        return out
    if isinstance(value, list):
        if rng.random() < rate / 2:
            return []
        return [mutate_json(v, rng, rate) for v in value]
    return value


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()
    except (ValueError, OverflowError):
        return b'{"huge": ' + str(10**400).encode() + b"}"


def mutate_body(status: int, body: bytes, content_type: str, rng: random.Random) -> tuple[int, bytes, str]:
    mode = rng.choice(["json", "json", "json", "json", "truncate", "bytes", "status", "empty", "nan", "html"])
    if mode == "json":
        try:
            parsed = json.loads(body)
        except ValueError:
            return status, body[: rng.randint(0, len(body))], content_type
        return status, _dumps(mutate_json(parsed, rng, rng.choice([0.05, 0.2, 0.5]))), "application/json"
    if mode == "truncate":
        return status, body[: rng.randint(0, max(0, len(body) - 1))], content_type
    if mode == "bytes":
        return status, rng.randbytes(rng.randint(0, 2000)), content_type
    if mode == "status":
        return rng.choice([199, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503, 599]), body, content_type
    if mode == "empty":
        return status, b"", content_type
    if mode == "nan":
        return status, b'{"status": "success", "data": NaN, "result": Infinity, "x": -Infinity}', content_type
    return status, b"<html><body>502 Bad Gateway</body></html>", "text/html"


class MutatingProxy(HttpSimulator):
    """Forwards every request to `upstream` (None: a canned answer per path) and mutates the answer."""

    name = "mutating-proxy"

    def __init__(self, upstream: str | None = None, canned: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.canned = canned or {}
        self.seed = 0
        self.answers = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._forward)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        rng = random.Random(f"{self.seed}:{request.path}:{self.answers}")
        self.answers += 1
        if self.upstream is None:
            key = next((p for p in self.canned if request.path.startswith(p)), None)
            status, body, ctype = (200, json.dumps(self.canned[key]).encode(), "application/json") if key else (
                404, b"not found", "text/plain")
        else:
            async with ClientSession(timeout=ClientTimeout(total=5)) as session, session.request(
                    request.method, self.upstream + request.path_qs, data=await request.read(),
                    headers={k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")},
            ) as resp:
                status, body, ctype = resp.status, await resp.read(), resp.content_type
        status, body, ctype = mutate_body(status, body, ctype, rng)
        if status in (204, 304) or status < 200:
            return web.Response(status=204 if status < 200 else status)
        return web.Response(status=status, body=body, content_type=ctype.split(";")[0] or None)


# -- raw TCP garbage servers --------------------------------------------------------------------------
class GarbageServer:
    """Answers each connection with `reply(first_bytes_received)` then closes (or stays silent)."""

    def __init__(self) -> None:
        self.reply: Callable[[bytes], bytes] = lambda _b: b""
        self.hold_open = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> GarbageServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    first = await reader.read(4096)
            writer.write(self.reply(first if "first" in locals() else b""))
            await writer.drain()
            if self.hold_open:
                await asyncio.sleep(TIMEOUT_S + 0.5)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- the property every kind must satisfy -------------------------------------------------------------
def make_probe(target: dict[str, Any]):
    target = {"name": "fuzzed", "timeout_s": TIMEOUT_S, "interval_s": 5, **target}
    config = parse_config(yaml.safe_dump({"targets": [target]}), "fuzz.yaml")
    return build_probe(config, config.targets[0])


async def check_bounded(probe: Any, must_be_down: bool = False) -> ProbeResult:
    started = time.monotonic()
    result = await asyncio.wait_for(probe.check(), TIMEOUT_S + MARGIN_S + 5)  # wait_for: a hang fails loudly
    elapsed = time.monotonic() - started
    assert isinstance(result, ProbeResult)
    assert elapsed <= TIMEOUT_S + MARGIN_S, f"check took {elapsed:.2f} s (timeout {TIMEOUT_S} s)"
    assert result.status in ("up", "degraded", "down")
    if result.status != "up":
        assert result.error, result
    if must_be_down:
        assert result.status == "down", result
    assert "Traceback" not in (result.error or "")
    json.dumps(result.public())  # what the writer stores must serialise
    return result


@contextlib.asynccontextmanager
async def proxied(sim: HttpSimulator | None, canned: dict[str, Any] | None = None) -> AsyncIterator[MutatingProxy]:
    proxy = MutatingProxy(upstream=sim.url if sim else None, canned=canned)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def run_kind(target: Callable[[str], dict[str, Any]], sim: HttpSimulator | None, canned: dict | None = None) -> dict:
    statuses: dict[str, int] = {}

    async def go(seed: int) -> None:
        async with proxied(sim, canned) as proxy:
            proxy.seed = seed
            probe = make_probe(target(proxy.url))
            try:
                for _ in range(2):  # a second cycle on the reused (or discarded) client
                    result = await check_bounded(probe)
                    statuses[result.status] = statuses.get(result.status, 0) + 1
            finally:
                await probe.close()

    @fuzz
    @given(seed=st.integers(0, 2**32))
    def run(seed: int) -> None:
        asyncio.run(go(seed))

    run()
    return statuses


# -- HTTP kinds ----------------------------------------------------------------------------------------
def test_qdrant_probe_survives_mutated_answers() -> None:
    with QdrantSimulator() as sim:
        statuses = run_kind(lambda url: {"kind": "qdrant", "url": url}, sim)
    assert statuses.get("down", 0) > 0


def test_kubernetes_probe_survives_mutated_answers() -> None:
    sim = KubernetesSimulator().start()
    try:
        statuses = run_kind(lambda url: {"kind": "kubernetes", "url": url, "token": DEFAULT_TOKEN}, sim)
    finally:
        sim.stop()
    assert statuses.get("down", 0) > 0


def test_runpod_probe_survives_mutated_answers() -> None:
    sim = RunpodSimulator().start()
    try:
        statuses = run_kind(lambda url: {"kind": "runpod", "url": url, "endpoint_url": f"{url}/v2",
                                         "api_key": sim.api_key, "endpoints": ["vllm-prod", "sdxl"]}, sim)
    finally:
        sim.stop()
    assert statuses.get("down", 0) > 0


PROMETHEUS = {
    "/api/v1/status/buildinfo": {"status": "success", "data": {"version": "2.53.0", "revision": "x"}},
    "/api/v1/targets": {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "node", "instance": "a:9100"}, "health": "up", "lastError": "", "scrapeUrl": "http://a",
         "lastScrape": "2026-01-01T00:00:00Z", "lastScrapeDuration": 0.01, "scrapePool": "node"},
        {"labels": {"job": "api"}, "health": "down", "lastError": "refused", "scrapePool": "api"}]}},
    "/api/v1/alerts": {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "Down", "severity": "page"}, "annotations": {"summary": "x"}, "state": "firing",
         "activeAt": "2026-01-01T00:00:00Z", "value": "1e+00"}]}},
    "/api/v1/query": {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "node"}, "value": [1700000000.0, "0.5"]}]}},
}


def test_prometheus_probe_survives_mutated_answers() -> None:
    statuses = run_kind(lambda url: {"kind": "prometheus", "url": url,
                                     "queries": [{"name": "load", "promql": "up"}]}, None, PROMETHEUS)
    assert statuses.get("down", 0) > 0


def test_http_probe_survives_mutated_answers() -> None:
    statuses = run_kind(lambda url: {"kind": "http", "url": f"{url}/health", "expect_body": "ok"},
                        None, {"/health": {"status": "ok", "checks": [1, 2, 3]}})
    assert statuses.get("down", 0) > 0


# -- wire protocols ------------------------------------------------------------------------------------
def resp_info(body: bytes) -> bytes:
    return b"$" + str(len(body)).encode() + b"\r\n" + body + b"\r\n"


garbage = st.binary(max_size=600)
PREFIXES: dict[str, st.SearchStrategy[bytes]] = {
    "redis": st.one_of(
        garbage,
        st.binary(max_size=300).map(lambda b: b"+OK\r\n" * 3 + resp_info(b"# Server\r\nredis_version:" + b)),
        st.binary(max_size=300).map(lambda b: b"+OK\r\n" + resp_info(b)),
        st.sampled_from([b"-ERR nope\r\n", b"$999999\r\nshort", b":notanint\r\n", b"*-5\r\n", b"$-1\r\n" * 5,
                         b"+OK\r\n" + resp_info(b"used_memory:-9\r\nmaxmemory:abc\r\nconnected_clients:1e999\r\n"),
                         b"+OK\r\n" + resp_info(b"redis_version:7\r\nused_memory:" + b"9" * 5000 + b"\r\n")]),
    ),
    "nats": st.one_of(
        garbage,
        st.binary(max_size=300).map(lambda b: b"INFO {" + b + b"}\r\n"),
        st.sampled_from([b"INFO {}\r\n", b"INFO []\r\n", b'INFO {"server_id": 5, "max_payload": "x"}\r\n',
                         b'INFO {"jetstream": "yes", "headers": 1, "proto": -1}\r\nPONG\r\n', b"-ERR 'x'\r\n",
                         b"INFO " + b"{" * 5000 + b"\r\n", b'INFO {"version": "2.10"}\r\n+OK\r\nMSG x 1 999\r\n']),
    ),
    "neo4j": st.one_of(
        garbage,
        st.binary(max_size=300).map(lambda b: b"\x00\x00\x04\x05" + b),  # agrees on Bolt 5.4, then garbage
        st.binary(max_size=300).map(lambda b: b"\x00\x00\x00\x05" + struct.pack(">H", len(b)) + b + b"\x00\x00"),
        st.sampled_from([b"\x00\x00\x04\x05\x00\x03\xb1\x70\xa0\x00\x00", b"\x00\x00\x04\x05\xff\xff",
                         b"\x00\x00\x00\x00", b"HTTP/1.1 400 Bad Request\r\n\r\n",
                         b"\x00\x00\x04\x05\x00\x05\xb1\x7f\xa1\x81a\x00\x00"]),
    ),
    "postgres": st.one_of(
        garbage,
        st.binary(max_size=300).map(lambda b: b"R\x00\x00\x00\x08\x00\x00\x00\x00" + b),  # AuthenticationOk
        st.binary(max_size=300).map(lambda b: b"N" + b),  # no SSL, then garbage
        st.sampled_from([b"E\x00\x00\x00\x05x", b"R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I",
                         b"R\x00\x00\x00\x08\x00\x00\x00\x00S\xff\xff\xff\xff", b"R\x00\x00\x00\x08\x00\x00\x00\x05"]),
    ),
    "tcp": garbage,
}
TARGETS = {
    "redis": lambda port: {"kind": "redis", "url": f"redis://127.0.0.1:{port}"},
    "nats": lambda port: {"kind": "nats", "url": f"nats://127.0.0.1:{port}"},
    "neo4j": lambda port: {"kind": "neo4j", "url": f"bolt://127.0.0.1:{port}"},
    "postgres": lambda port: {"kind": "postgres", "url": f"postgresql://u:p@127.0.0.1:{port}/db"},
    "tcp": lambda port: {"kind": "tcp", "url": f"tcp://127.0.0.1:{port}"},
}
# every other registered kind that talks to a host:port (new and plugin kinds): its example target pointed at the
# garbage server, fed plain garbage
HAND_WRITTEN = {*TARGETS, "qdrant", "kubernetes", "runpod", "prometheus", "http"}
for _kind in registry.kinds():
    _url = str((registry.example(_kind) or {}).get("url", ""))
    if _kind not in HAND_WRITTEN and re.match(r"^[a-z][a-z0-9+.-]*://[^/]*:\d+", _url):
        TARGETS[_kind] = lambda port, k=_kind, url=_url: {
            **(registry.example(k) or {}), "url": re.sub(r"(://[^/]*):\d+", rf"\g<1>:{port}", url, count=1)}
        PREFIXES[_kind] = garbage


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_wire_probe_survives_garbage(kind: str) -> None:
    seen: dict[str, int] = {}

    async def go(reply: bytes, hold_open: bool) -> None:
        async with GarbageServer() as server:
            server.reply = lambda _first: reply
            server.hold_open = hold_open
            probe = make_probe(TARGETS[kind](server.port))
            try:
                result = await check_bounded(probe, must_be_down=kind != "tcp")
                seen[result.status] = seen.get(result.status, 0) + 1
            finally:
                await probe.close()

    @fuzz
    @given(reply=PREFIXES[kind], hold_open=st.booleans())
    def run(reply: bytes, hold_open: bool) -> None:
        asyncio.run(go(reply, hold_open))

    run()
    assert sum(seen.values()) >= min(EXAMPLES, 10)


async def test_collector_keeps_running_through_garbage(write_config, store_redis_url, store_prefix) -> None:
    """The real collector with one garbage server per wire kind plus mutating HTTP fronts: it keeps cycling,
    every target gets results in the store, all of them down with an error."""
    async with contextlib.AsyncExitStack() as stack:
        targets = []
        for i, kind in enumerate(TARGETS):
            server = await stack.enter_async_context(GarbageServer())
            noise = bytes(range(i, 256)) * 3
            server.reply = lambda _first, noise=noise: noise
            targets.append({**TARGETS[kind](server.port), "name": f"g-{kind}", "interval_s": 1, "timeout_s": 0.8})
        proxy = await stack.enter_async_context(proxied(None, PROMETHEUS))
        targets.append({"kind": "prometheus", "url": proxy.url, "name": "g-prometheus", "interval_s": 1,
                        "timeout_s": 0.8})
        config = load_config(write_config(targets, collector={"breaker": {"failures": 100}}))
        stop = asyncio.Event()
        task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
        await asyncio.sleep(4.5)
        assert not task.done(), task.exception() if task.done() else None
        stop.set()
        collector = await asyncio.wait_for(task, 10)
    assert collector.scheduler.probes_done >= 2 * len(targets)
    store = redis.Redis.from_url(store_redis_url)
    try:
        latest = {k.decode(): json.loads(v) for k, v in store.hgetall(Keys(store_prefix).latest).items()}
    finally:
        store.close()
    assert set(latest) == {t["name"] for t in targets}
    for name, result in latest.items():
        if name == "g-tcp":  # tcp only connects: a listener that talks nonsense is still up
            continue
        assert result["error"], (name, result)
        if name != "g-prometheus":  # a mutated Prometheus answer may be intact by chance
            assert result["status"] == "down", (name, result)
