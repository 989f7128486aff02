"""A sample of fuzzed action parameters against the real backends: nothing changes, refusals are audited.

Invalid input (tests/unit/test_fuzz_guard.py) never gets past the guard; here the same kind of input goes to a
guard wired to the Kubernetes API simulator, a real NATS JetStream and the real PostgreSQL audit log, and the
backends are read afterwards. Type-valid input the policy forbids (replicas outside the configured bounds, a
deployment without bounds, an unknown stream) is refused and audited as refused (docs/ACTIONS.md).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import BadRequest, Principal, PurgeStream, ScaleDeployment, parse_request
from hulk_ops.core.config import load_config
from sandbox.k8s_sim import DEFAULT_TOKEN
from tests.unit.test_fuzz_guard import bad_value

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s"]
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
NS, NAME = "hulk-staging", "api-gateway"  # seeded: 1 replica
sample = settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def guard(write_config, audit_schema, k8s_sim, nats_server) -> GuardedAction:
    path = write_config(
        [{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN},
         {"name": "nats-dev", "kind": "nats", "url": nats_server.url}],
        audit=audit_schema.model_dump(),
        actions={"scale": [{"target": "k8s-dev", "namespace": NS, "deployment": NAME, "min": 1, "max": 5}]},
    )
    return GuardedAction(load_config(path))


def deployments(k8s_api) -> dict[str, int]:
    items = client.AppsV1Api(k8s_api).list_deployment_for_all_namespaces().items
    return {f"{d.metadata.namespace}/{d.metadata.name}": int(d.spec.replicas) for d in items}


def test_fuzzed_scale_input_changes_no_deployment(guard, k8s_api) -> None:
    before = deployments(k8s_api)
    seen = {"bad_input": 0, "refused": 0}

    @sample
    @given(field=st.sampled_from(["namespace", "deployment", "replicas"]), data=st.data())
    def run(field: str, data: st.DataObject) -> None:
        params = {"action": "scale", "target": "k8s-dev", "namespace": NS, "deployment": NAME, "replicas": 3}
        params[field] = data.draw(bad_value(field))
        with pytest.raises(BadRequest):
            parse_request(params)
        forced = ScaleDeployment.model_construct(**{k: v for k, v in params.items() if k != "action"})
        with pytest.raises(BadRequest):
            asyncio.run(guard.submit(OPERATOR, forced, confirm=str(params["deployment"])))
        seen["bad_input"] += 1

    run()
    # valid types the policy forbids: outside 1..5, a deployment with no bounds, an unknown namespace
    for ns, name, replicas in [(NS, NAME, 0), (NS, NAME, 6), (NS, NAME, 10_000), ("ml", "embedder", 1),
                               ("no-such-ns", NAME, 2), (NS, "web", 2)]:
        result = asyncio.run(guard.submit(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=ns, deployment=name,
                                                                 replicas=replicas), confirm=name))
        assert result.status == "refused", result.message
        assert result.error and "Traceback" not in result.message
        seen["refused"] += 1
    assert deployments(k8s_api) == before  # nothing changed on the API server
    outcomes = [r.outcome for r in asyncio.run(guard.history())]
    assert outcomes.count("refused") == seen["refused"] == 6
    assert set(outcomes) == {"refused"}  # no 'started': nothing was executed
    assert seen["bad_input"] >= 10


def test_fuzzed_purge_input_purges_nothing(guard, stream) -> None:
    asyncio.run(stream.create({"worker": None}))
    asyncio.run(stream.publish(12))

    @sample
    @given(field=st.sampled_from(["stream", "subject", "keep"]), data=st.data())
    def run(field: str, data: st.DataObject) -> None:
        params = {"action": "purge_stream", "target": "nats-dev", "stream": stream.name, "subject": "orders",
                  "keep": 1}
        params[field] = data.draw(bad_value(field))
        with pytest.raises(BadRequest):
            parse_request(params)
        forced = PurgeStream.model_construct(**{k: v for k, v in params.items() if k != "action"})
        with pytest.raises(BadRequest):
            asyncio.run(guard.submit(OPERATOR, forced, confirm=str(params["stream"])))

    run()
    ghost = asyncio.run(guard.submit(OPERATOR, PurgeStream(target="nats-dev", stream="NO_SUCH_STREAM_X"),
                                  confirm="NO_SUCH_STREAM_X"))
    assert ghost.status == "refused", ghost.message
    messages, _size, pending = asyncio.run(stream.state())
    assert (messages, pending["worker"]) == (12, 12)
    assert [r.outcome for r in asyncio.run(guard.history())] == ["refused"]
