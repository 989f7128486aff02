"""The Neo4j probe through the real `neo4j` driver against the Bolt simulator: up, down, degraded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet
from hulk_ops.probes.neo4j import Neo4jProbe, Settings
from sandbox.neo4j_sim import Neo4jSimulator

pytest_plugins = ["tests.fixtures_neo4j"]

PASSWORD = "neo4j-sandbox"


@pytest.fixture
async def make_probe() -> AsyncIterator[Callable[..., Neo4jProbe]]:
    probes: list[Neo4jProbe] = []

    def _make(url: str, **fields: object) -> Neo4jProbe:
        settings = Settings.model_validate({"name": "graph", "kind": "neo4j", "url": url, "password": PASSWORD,
                                            "timeout_s": 2.0, **fields})
        probe = Neo4jProbe(settings, rules=RuleSet.for_target("neo4j", [], []), retries=1)
        probes.append(probe)
        return probe

    yield _make
    for probe in probes:
        await probe.close()


def _url(sim: Neo4jSimulator, scheme: str) -> str:
    return sim.url if scheme == "bolt" else sim.routing_url


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
async def test_up_with_version_edition_and_databases(neo4j_sim: Neo4jSimulator, make_probe, scheme: str) -> None:
    probe = make_probe(_url(neo4j_sim, scheme))
    first, second = await probe.check(), await probe.check()
    for result in (first, second):
        assert result.status == "up", result.error
        assert result.error is None
        assert result.version == "5.26.1"
        assert result.details["edition"] == "enterprise"
        assert result.details["agent"] == "Neo4j/5.26.1"
        assert result.details["protocol"] == "5.4"
        assert result.metrics["edition_enterprise"] == 1
        assert result.metrics["databases"] == 3
        assert result.metrics["databases_online"] == 3 and result.metrics["databases_offline"] == 0
        assert {k: v for k, v in result.metrics.items() if k.startswith("database.")} == {
            "database.neo4j.online": 1, "database.system.online": 1, "database.graph-rag.online": 1}
        assert 0 < result.latency_ms < 1000
        assert [d["name"] for d in result.details["databases"]] == ["graph-rag", "neo4j", "system"]
    state = neo4j_sim.state()
    assert state["connections"] >= 1  # the driver is reused: its pooled connection stays open
    assert state["requests"]["HELLO"] == state["connections"]  # ... and not reopened per check
    assert "TELEMETRY" not in state["requests"]  # a monitor adds no usage telemetry


@pytest.mark.parametrize(("protocol", "version"), [("4.4", "4.4.30"), ("5.0", "5.3.0"), ("5.1", "5.26.1")])
async def test_older_bolt_versions(neo4j_sim: Neo4jSimulator, make_probe, protocol: str, version: str) -> None:
    neo4j_sim.control("set_protocols", {"versions": [protocol]})
    neo4j_sim.control("set_version", {"version": version, "edition": "community"})
    neo4j_sim.control("set_database", {"name": "graph-rag", "status": "offline", "message": "stopped by operator"})
    result = await make_probe(neo4j_sim.routing_url).check()
    assert result.status == "degraded", result.error
    assert result.details["protocol"] == protocol
    assert result.version == version and result.details["edition"] == "community"
    assert result.metrics["edition_enterprise"] == 0
    rag = next(d for d in result.details["databases"] if d["name"] == "graph-rag")
    assert rag["status"] == "offline" and rag["message"] == "stopped by operator"  # 4.4 calls it "error"


async def test_degraded_while_a_database_is_offline(neo4j_sim: Neo4jSimulator, make_probe) -> None:
    probe = make_probe(neo4j_sim.url)
    assert (await probe.check()).status == "up"
    neo4j_sim.control("set_database", {"name": "graph-rag", "status": "offline"})
    result = await probe.check()
    assert result.status == "degraded"
    assert result.error == "database graph-rag: offline"
    assert result.metrics["databases_offline"] == 1 and result.metrics["databases_online"] == 2
    neo4j_sim.control("set_database", {"name": "graph-rag", "status": "online"})
    assert (await probe.check()).status == "up"


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
async def test_down_when_the_server_is_down(neo4j_sim: Neo4jSimulator, make_probe, scheme: str) -> None:
    probe = make_probe(_url(neo4j_sim, scheme))
    assert (await probe.check()).status == "up"
    neo4j_sim.set_fault("down")
    result = await probe.check()
    _assert_down(result, f"connection refused (127.0.0.1:{neo4j_sim.port})")
    neo4j_sim.set_fault(None)
    assert (await probe.check()).status == "up"  # the client is rebuilt after the failure


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
async def test_down_within_timeout_when_the_server_stalls(neo4j_sim: Neo4jSimulator, make_probe, scheme: str) -> None:
    probe = make_probe(_url(neo4j_sim, scheme), timeout_s=1.0)
    assert (await probe.check()).status == "up"
    neo4j_sim.set_fault("stall")
    started = time.perf_counter()
    result = await probe.check()
    elapsed = time.perf_counter() - started
    _assert_down(result, "timed out after 1.0 s")
    assert elapsed < 1.0 + 1.0


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
async def test_wrong_password_is_down(neo4j_sim: Neo4jSimulator, make_probe, scheme: str) -> None:
    result = await make_probe(_url(neo4j_sim, scheme), password="not-the-password").check()
    _assert_down(result, "authentication failed: The client is unauthorized due to authentication failure.")
    assert "not-the-password" not in repr(result)


async def test_password_change_applies_to_new_connections(neo4j_sim: Neo4jSimulator, make_probe) -> None:
    neo4j_sim.control("set_password", {"password": "rotated"})
    assert (await make_probe(neo4j_sim.url).check()).error.startswith("authentication failed")
    assert (await make_probe(neo4j_sim.url, password="rotated").check()).status == "up"


async def test_server_without_authentication(neo4j_sim: Neo4jSimulator, make_probe) -> None:
    neo4j_sim.control("set_password", {"password": None})
    assert (await make_probe(neo4j_sim.url, password=None).check()).status == "up"


async def test_configured_database_must_be_available(neo4j_sim: Neo4jSimulator, make_probe) -> None:
    neo4j_sim.control("set_database", {"name": "graph-rag", "status": "offline"})
    _assert_down(await make_probe(neo4j_sim.url, database="graph-rag").check(),
                 "database unavailable: Database 'graph-rag' is unavailable.")
    _assert_down(await make_probe(neo4j_sim.url, database="missing").check(),
                 "Neo.ClientError.Database.DatabaseNotFound: Database does not exist. Database name: 'missing'.")
    assert (await make_probe(neo4j_sim.url, database="neo4j").check()).status == "degraded"


async def test_slow_server_shows_in_latency(neo4j_sim: Neo4jSimulator, make_probe) -> None:
    probe = make_probe(neo4j_sim.url)
    assert (await probe.check()).status == "up"
    neo4j_sim.set_fault("slow", 0.15)
    result = await probe.check()
    assert result.status == "up" and result.latency_ms >= 300  # RUN and PULL are each delayed by 0.15 s


def _assert_down(result: ProbeResult, error: str) -> None:
    assert result.status == "down"
    assert result.error == error
    assert result.metrics == {} and result.version is None
