"""Each built-in kind's probe against its real server or simulator: every metric it emits is in its catalog."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.probes import registry
from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator
from sandbox.neo4j_sim import Neo4jSimulator
from sandbox.qdrant_sim import QdrantSimulator
from sandbox.runpod_sim import RunpodSimulator
from tests.conformance import assert_emitted_in_catalog, live_source
from tests.fixtures_runpod import _target as runpod_target

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_prom"]


@contextlib.asynccontextmanager
async def simulated(sim_cls: type, target: Callable[[Any], dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    sim = sim_cls()
    sim.start()
    try:
        yield target(sim)
    finally:
        sim.stop()


@contextlib.asynccontextmanager
async def fixed(target: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    yield target


@pytest.fixture
async def live(request: pytest.FixtureRequest, stream) -> Callable[[str], Any]:
    """live(kind) -> an async context giving a target of that kind on a server that answers."""
    await stream.create({"billing": None})
    await stream.publish(3)

    def target(kind: str) -> Any:
        fx = request.getfixturevalue
        return {
            "redis": lambda: fixed({"url": fx("redis_server").url}),
            "postgres": lambda: fixed({"url": fx("postgres_server").url}),
            "nats": lambda: fixed({"url": stream.url, "streams": [stream.name]}),
            "tcp": lambda: fixed({"url": "tcp://" + stream.url.split("://")[1], "expect": "max_payload"}),
            "http": lambda: fixed({"url": f"http://{fx('exporter').address}/metrics"}),
            "prometheus": lambda: fixed({"url": fx("prometheus").url}),
            "qdrant": lambda: simulated(QdrantSimulator, lambda s: {"url": s.url}),
            "neo4j": lambda: simulated(Neo4jSimulator, lambda s: {"url": s.url, "password": "neo4j-sandbox"}),
            "kubernetes": lambda: simulated(KubernetesSimulator, lambda s: {"url": s.url, "token": DEFAULT_TOKEN}),
            "runpod": lambda: simulated(RunpodSimulator, lambda s: {k: v for k, v in runpod_target(s).items()
                                                                      if k not in ("name", "kind")}),
        }.get(kind, lambda: other(kind, fx("services")))()
    return target


def other(kind: str, services: Any) -> Any:
    source = live_source(kind)
    assert source is not None, \
        f"kind {kind!r}: declare live_target(services) in tests/integration/test_{kind}_probe.py"
    return fixed(source(services))


BUILTIN = tuple(k for k, e in registry.entries().items() if e.dist == registry.BUILTIN)


@pytest.mark.parametrize("kind", sorted(BUILTIN))
async def test_emitted_metrics_lie_inside_the_catalog(kind: str, live) -> None:
    async with live(kind) as fields:
        raw = {"targets": [{"name": f"c-{kind}", "kind": kind, "timeout_s": 5, **fields}]}
        config = parse_config(yaml.safe_dump(raw), "conformance.yaml", environ={})
        probe = build_probe(config, config.targets[0])
        try:
            result = await probe.check()
        finally:
            await probe.close()
    assert_emitted_in_catalog(result)
