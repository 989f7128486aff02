"""Guarded deployment scaling against the Kubernetes API simulator, through the official client."""

from __future__ import annotations

import pytest
from kubernetes import client

from hulk_ops.actions.executors.kubernetes import KubernetesScale
from hulk_ops.actions.guard import EXECUTORS, GuardedAction
from hulk_ops.actions.model import Principal, ScaleDeployment
from hulk_ops.core.config import load_config
from sandbox.k8s_sim import DEFAULT_TOKEN

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s"]
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
NS, NAME = "hulk-staging", "api-gateway"  # seeded: 1 replica, requests 250m CPU / 256Mi


@pytest.fixture
def make_guard(write_config, audit_schema, k8s_sim):
    def make(executor: type[KubernetesScale] | None = None) -> GuardedAction:
        path = write_config(
            [{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN}],
            audit=audit_schema.model_dump(),
            actions={"prices": {"cpu_hour": 0.04, "gib_hour": 0.005, "gpu_hour": 1.5}, "conflict_retries": 2,
                     "scale": [{"target": "k8s-dev", "namespace": NS, "deployment": NAME, "min": 1, "max": 5},
                               {"target": "k8s-dev", "namespace": NS, "deployment": "ghost", "max": 3},
                               {"target": "k8s-dev", "namespace": "ml", "deployment": "embedder", "max": 4}]},
        )
        executors = dict(EXECUTORS, scale=executor) if executor else None
        return GuardedAction(load_config(path), executors=executors)
    return make


def replicas(k8s_api, ns: str = NS, name: str = NAME) -> int:
    return int(client.AppsV1Api(k8s_api).read_namespaced_deployment(name, ns).spec.replicas)


async def test_dry_run_uses_the_server_and_prices_the_change(make_guard, k8s_api) -> None:
    result = await make_guard().dry_run(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=NS, deployment=NAME,
                                                                  replicas=4))
    assert result.status == "dry_run", result.message
    p = result.preview
    assert p.before["replicas"] == 1 and p.expected["replicas"] == 4
    assert p.expected["server_dry_run"] == {"replicas": 4, "dryRun": "All"}
    assert p.before["pod_requests"] == {"cpu": 0.25, "memory_gib": 0.25, "gpu": 0.0}
    assert p.cost_usd_per_hour_delta == pytest.approx(3 * (0.25 * 0.04 + 0.25 * 0.005))
    assert "from 1 to 4 replicas" in p.summary
    assert replicas(k8s_api) == 1  # dryRun=All stored nothing


async def test_gpu_pods_are_priced_per_gpu(make_guard) -> None:
    result = await make_guard().dry_run(OPERATOR, ScaleDeployment(target="k8s-dev", namespace="ml",
                                                                  deployment="embedder", replicas=1))
    # embedder: 2 -> 1 pods of 4 CPU, 16 GiB, 1 GPU
    assert result.preview.cost_usd_per_hour_delta == pytest.approx(-(4 * 0.04 + 16 * 0.005 + 1 * 1.5))
    assert result.preview.blast_radius[0] == "1 pod(s) of ml/embedder will be terminated"


async def test_scale_really_changes_spec_replicas(make_guard, k8s_api) -> None:
    guard = make_guard()
    result = await guard.submit(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=NS, deployment=NAME,
                                                          replicas=3), confirm=NAME)
    assert result.status == "succeeded", result.message
    assert replicas(k8s_api) == 3
    assert result.after["replicas"] == 3 and result.after["previous_replicas"] == 1
    assert result.after["conflicts_retried"] == 0
    outcome = (await guard.history())[0]
    assert (outcome.outcome, outcome.before["replicas"], outcome.after["replicas"]) == ("succeeded", 1, 3)


@pytest.mark.parametrize(("namespace", "name", "wanted", "error"), [
    (NS, NAME, 9, "9 replicas is outside the bounds of hulk-staging/api-gateway (1..5"),
    (NS, NAME, 0, "0 replicas is outside the bounds"),
    (NS, "graph-writer", 2, "has no replica bounds in config (actions.scale): scaling it is not allowed"),
    (NS, "ghost", 2, "deployment hulk-staging/ghost not found on k8s-dev"),
])
async def test_out_of_bounds_and_unknown_are_refused(make_guard, k8s_api, namespace, name, wanted, error) -> None:
    result = await make_guard().submit(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=namespace,
                                                                 deployment=name, replicas=wanted), confirm=name)
    assert result.status == "refused"
    assert error in result.error
    assert replicas(k8s_api) == 1


class ConcurrentWriter(KubernetesScale):
    """Someone else scales the deployment between our read and our write, `times` times."""

    sim = None
    times = 1
    calls = 0

    def _before_write(self, request: ScaleDeployment) -> None:
        cls = type(self)
        cls.calls += 1
        if cls.calls <= cls.times:
            other = 2 + (cls.calls + 1) % 2  # 2, 3, 2, ...: every write of theirs really changes the object
            cls.sim.control("scale", {"namespace": request.namespace, "name": request.deployment, "replicas": other})


async def test_stale_resource_version_is_reread_and_retried(make_guard, k8s_sim, k8s_api) -> None:
    ConcurrentWriter.sim, ConcurrentWriter.times, ConcurrentWriter.calls = k8s_sim, 1, 0
    result = await make_guard(ConcurrentWriter).submit(
        OPERATOR, ScaleDeployment(target="k8s-dev", namespace=NS, deployment=NAME, replicas=4), confirm=NAME)
    assert result.status == "succeeded", result.message
    assert result.after["conflicts_retried"] == 1
    assert result.after["previous_replicas"] == 2  # the re-read saw the other writer's change
    assert replicas(k8s_api) == 4


async def test_conflicts_beyond_the_bound_fail_and_say_so(make_guard, k8s_sim, k8s_api) -> None:
    ConcurrentWriter.sim, ConcurrentWriter.times, ConcurrentWriter.calls = k8s_sim, 99, 0
    guard = make_guard(ConcurrentWriter)
    result = await guard.submit(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=NS, deployment=NAME,
                                                          replicas=4), confirm=NAME)
    assert result.status == "failed"
    assert "3 conflicting writes (409, stale resourceVersion)" in result.error
    assert ConcurrentWriter.calls == 3  # conflict_retries: 2 -> three attempts
    assert replicas(k8s_api) == 2  # the other writer's last value (2, 3, 2); ours was never applied
    assert (await guard.history())[0].outcome == "failed"


async def test_unreachable_api_server_is_a_failure_not_a_crash(make_guard, k8s_sim) -> None:
    guard = make_guard()
    k8s_sim.set_fault("down")
    result = await guard.dry_run(OPERATOR, ScaleDeployment(target="k8s-dev", namespace=NS, deployment=NAME,
                                                           replicas=2))
    assert result.status == "refused"
    assert "connection refused" in result.error
