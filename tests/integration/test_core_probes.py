"""Redis, PostgreSQL and NATS probes against the real servers: up, down, stalled, degraded."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import ConsumerConfig

from hulk_ops.core.config import parse_config
from hulk_ops.core.model import PUBLIC_FIELDS
from hulk_ops.entrypoints.probe_once import probe_once
from hulk_ops.probes.redis import RedisProbe, Settings
from sandbox.services import Endpoint, find_binary


async def check(target: dict, rules: dict | None = None):
    config = parse_config(__import__("yaml").safe_dump({"rules": rules or {}, "targets": [target]}))
    [result] = await probe_once(config, config.targets)
    return result


@pytest.mark.parametrize("kind", ["redis", "postgres", "nats"])
async def test_up_against_the_real_server(kind: str, services) -> None:
    url = {"redis": services.endpoints["redis"].url, "nats": services.endpoints["nats"].url,
           "postgres": services.endpoints["postgres"].url}[kind]
    result = await check({"name": f"{kind}-1", "kind": kind, "url": url})
    assert result.status == "up", result.error
    assert result.error is None
    assert result.version and result.version[0].isdigit()
    assert 0 < result.latency_ms < 1000
    assert tuple(result.public()) == PUBLIC_FIELDS
    expected = {"redis": "used_memory_bytes", "postgres": "connections_used_pct", "nats": "js.storage_bytes"}[kind]
    assert expected in result.metrics


@pytest.mark.parametrize("kind,scheme", [("redis", "redis"), ("postgres", "postgresql"), ("nats", "nats")])
async def test_down_with_connection_refused(kind: str, scheme: str, closed_port: int) -> None:
    result = await check({"name": "gone", "kind": kind, "url": f"{scheme}://postgres@127.0.0.1:{closed_port}/x"
                          if kind == "postgres" else f"{scheme}://127.0.0.1:{closed_port}", "timeout_s": 2})
    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{closed_port})"
    assert result.latency_ms < 1000


@pytest.mark.parametrize("kind,scheme", [("redis", "redis"), ("postgres", "postgresql"), ("nats", "nats")])
async def test_down_within_timeout_when_the_server_never_answers(kind: str, scheme: str, blackhole: int) -> None:
    started = time.perf_counter()
    result = await check({"name": "hole", "kind": kind, "url": f"{scheme}://127.0.0.1:{blackhole}", "timeout_s": 1})
    elapsed = time.perf_counter() - started
    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 0.9 < elapsed < 1.6


async def test_nats_consumer_lag_above_threshold_is_degraded(nats_server: Endpoint) -> None:
    stream, subject = f"T{uuid.uuid4().hex[:8]}", f"t.{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[subject])
        await js.add_consumer(stream, ConsumerConfig(durable_name="worker", ack_policy="explicit"))
        target = {"name": "bus", "kind": "nats", "url": nats_server.url, "streams": [stream]}
        rules = {"nats": ["consumer.*.pending > 10"]}
        healthy = await check(target, rules)
        assert healthy.status == "up", healthy.error
        for i in range(25):
            await js.publish(subject, f"job {i}".encode())
        lagging = await check(target, rules)
        assert lagging.status == "degraded"
        assert lagging.metrics[f"consumer.{stream}.worker.pending"] == 25
        assert lagging.metrics[f"stream.{stream}.messages"] == 25
        assert lagging.error == f"consumer {stream}/worker: 25 pending"  # the rule names the consumer
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_postgres_old_open_transaction_is_degraded(postgres_server: Endpoint) -> None:
    other = await asyncpg.connect(postgres_server.url)
    tx = other.transaction()
    await tx.start()
    await other.fetchval("SELECT txid_current()")
    try:
        await asyncio.sleep(1.2)
        result = await check({"name": "db", "kind": "postgres", "url": postgres_server.url,
                              "rules": ["oldest_xact_age_s > 1"]})
        assert result.status == "degraded"
        assert result.metrics["oldest_xact_age_s"] >= 1.0
        assert result.error.startswith("a transaction has been open ") and result.error.endswith(" s")
    finally:
        await tx.rollback()
        await other.close()


async def test_postgres_database_size_is_read_once_per_database_size_every_s(postgres_server: Endpoint) -> None:
    """pg_database_size() stats every file of the database: a probe reads it at most every
    database_size_every_s, reports the last size read in between, and reads it again on a new connection."""
    from hulk_ops.probes import postgres

    name = f"hulk_size_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_server.url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    probes = [postgres.PostgresProbe(postgres.Settings(name="db", kind="postgres", url=url,
                                                       database_size_every_s=every)) for every in (3600, 0)]
    try:
        before = [(await p.check()).metrics["database_size_bytes"] for p in probes]
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE filler AS SELECT repeat('x', 1000) AS pad FROM generate_series(1, 8000)")
        await conn.close()
        after = [(await p.check()) for p in probes]
        assert all(r.status == "up" for r in after), [r.error for r in after]
        assert after[0].metrics["database_size_bytes"] == before[0]  # read an hour ago at most: as last read
        assert after[1].metrics["database_size_bytes"] >= before[1] + 8_000_000  # read every cycle
        await probes[0].close()  # a new connection reads it again
        assert (await probes[0].check()).metrics["database_size_bytes"] >= before[0] + 8_000_000
    finally:
        for p in probes:
            await p.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_redis_keyspace_rule(redis_server: Endpoint) -> None:
    db = 14
    client = aioredis.Redis.from_url(f"{redis_server.url}/{db}")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    try:
        await client.mset({f"{prefix}:{i}": i for i in range(5)})
        result = await check({"name": "cache", "kind": "redis", "url": f"{redis_server.url}/{db}",
                              "rules": [f"keyspace.db{db}.keys > 2"]})
        assert result.status == "degraded"
        assert result.metrics[f"keyspace.db{db}.keys"] >= 5
    finally:
        await client.delete(*[f"{prefix}:{i}" for i in range(5)])
        await client.aclose()


async def test_redis_probe_connections_keep_no_read_buffer_and_share_one_event_dispatcher(
        redis_server: Endpoint) -> None:
    """What keeps the connection each Redis target holds small (bench/collector.py, rss_per_target_kb): between
    two cycles it keeps no bytes of the last reply (INFO, ~5 KB), and redis-py's per-client event dispatchers
    are one object for every probe client."""
    probes = [RedisProbe(Settings(name=f"lean-{i}", kind="redis", url=redis_server.url)) for i in range(2)]
    try:
        for probe in probes:
            result = await probe.check()
            assert result.status == "up", result.error
            assert "used_memory_bytes" in result.metrics
        first, second = (probe._client for probe in probes)
        assert first is not None and second is not None and first.connection is not None
        parser = first.connection._parser
        assert not hasattr(parser, "_reader")  # hiredis' reader keeps its buffer until the next reply
        assert parser._buffer == b"" and not parser._chunks
        assert first._event_dispatcher is second._event_dispatcher is first.connection._event_dispatcher
    finally:
        for probe in probes:
            await probe.close()


async def test_redis_wrong_or_missing_password_is_down(closed_port: int, spawn_server) -> None:
    spawn_server([find_binary("redis-server"), "--port", str(closed_port), "--bind", "127.0.0.1",
                  "--save", "", "--requirepass", "right-pw-456"], closed_port, "redis-server")
    url = f"redis://127.0.0.1:{closed_port}"
    wrong = await check({"name": "cache", "kind": "redis", "url": url, "password": "canary-pw-123"})
    assert wrong.status == "down"
    assert wrong.error.startswith("authentication failed")
    assert "canary-pw-123" not in wrong.error
    missing = await check({"name": "cache", "kind": "redis", "url": url})
    assert missing.status == "down"
    assert missing.error.startswith("authentication failed")
    right = await check({"name": "cache", "kind": "redis", "url": url, "password": "right-pw-456"})
    assert right.status == "up", right.error


async def test_nats_reads_every_page_of_streams_and_consumers(closed_port: int, spawn_server, tmp_path) -> None:
    """The JetStream API answers at most 256 streams (and consumers) a page: a probe reads them all, up to
    max_streams, with every consumer's lag."""
    spawn_server([find_binary("nats-server"), "-a", "127.0.0.1", "-p", str(closed_port), "-js", "-sd",
                  str(tmp_path)], closed_port, "nats-server")
    url = f"nats://127.0.0.1:{closed_port}"
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for i in range(300):
            await js.add_stream(name=f"S{i:03d}", subjects=[f"s.{i}"], storage="memory", max_msgs=1000)
        await js.publish("s.7", b"x")
        for i in range(270):
            await js.add_consumer("S007", ConsumerConfig(durable_name=f"c{i:03d}", ack_policy="explicit"))
    finally:
        await nc.close()
    result = await check({"name": "bus", "kind": "nats", "url": url, "max_streams": 1000, "timeout_s": 10})
    assert result.status == "up", result.error
    m = result.metrics
    assert m["js.streams"] == 300 and m["js.consumers"] == 270
    assert sorted(k for k in m if k.endswith(".max_msgs")) == [f"stream.S{i:03d}.max_msgs" for i in range(300)]
    assert m["stream.S007.messages"] == 1 and m["stream.S007.used_pct"] == 0.1
    assert sum(1 for k in m if k.startswith("consumer.S007.") and k.endswith(".pending")) == 270
    assert m["consumer.S007.c269.pending"] == 1 and m["consumer.S007.c000.ack_pending"] == 0
    [s7] = [s for s in result.details["streams"] if s["name"] == "S007"]
    assert s7["subjects"] == ["s.7"] and len(s7["consumers"]) == 270
    capped = await check({"name": "bus", "kind": "nats", "url": url, "max_streams": 10, "timeout_s": 10})
    assert sum(1 for k in capped.metrics if k.endswith(".messages")) == 10
    assert len(capped.details["streams"]) == 10


async def test_nats_without_jetstream_is_down_when_expected(closed_port: int, spawn_server) -> None:
    spawn_server([find_binary("nats-server"), "-a", "127.0.0.1", "-p", str(closed_port)], closed_port, "nats-server")
    url = f"nats://127.0.0.1:{closed_port}"
    result = await check({"name": "bus", "kind": "nats", "url": url})
    assert result.status == "down"
    assert "JetStream is not enabled" in result.error
    relaxed = await check({"name": "bus", "kind": "nats", "url": url, "expect_jetstream": False})
    assert relaxed.status == "up"
