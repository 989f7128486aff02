"""Rollout restart against the Kubernetes API simulator: guard, CLI, refusal paths and audit rows."""

from __future__ import annotations

import functools

import orjson
import pytest
from kubernetes import client

from hulk_ops.actions.executors.kubernetes import RESTARTED_AT
from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import Principal, RestartDeployment
from hulk_ops.core.config import load_config
from sandbox.k8s_sim import DEFAULT_TOKEN
from tests.fixtures_actions import add_user

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s"]
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
VIEWER = Principal(name="vera", roles=("viewer",), via="test")
NS, NAME = "hulk-staging", "api-gateway"


@pytest.fixture
def restart_config(write_config, audit_schema, k8s_sim):
    return write_config(
        [{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN},
         {"name": "k8s-ro", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN, "read_only": True}],
        audit=audit_schema.model_dump(),
        actions={"scale": [{"target": "k8s-dev", "namespace": NS, "deployment": NAME, "min": 1, "max": 5},
                           {"target": "k8s-ro", "namespace": NS, "deployment": NAME, "min": 1, "max": 5}]},
    )


def template(k8s_api) -> tuple[dict[str, str], set[str]]:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    dep = apps.read_namespaced_deployment(NAME, NS)
    pods = {p.metadata.name for p in core.list_namespaced_pod(NS).items if p.metadata.name.startswith(NAME)}
    return dict(dep.spec.template.metadata.annotations or {}), pods


async def test_dry_run_is_the_servers_answer_and_execute_rolls_the_pods(restart_config, k8s_api) -> None:
    guard = GuardedAction(load_config(restart_config))
    annotations, pods = template(k8s_api)
    request = RestartDeployment(target="k8s-dev", namespace=NS, deployment=NAME)
    preview = await guard.dry_run(OPERATOR, request)
    assert preview.status == "dry_run", preview.message
    assert preview.preview.expected["server_dry_run"]["dryRun"] == "All"
    assert preview.preview.expected["restarted_at"]
    assert preview.preview.cost_usd_per_hour_delta == 0.0
    assert template(k8s_api) == (annotations, pods)  # dryRun=All stored nothing

    result = await guard.submit(OPERATOR, request, confirm=NAME)
    assert result.status == "succeeded", result.message
    after, new_pods = template(k8s_api)
    assert after[RESTARTED_AT] == result.after["restarted_at"]
    assert new_pods and not (new_pods & pods)  # every pod was replaced
    rows = await guard.history()
    assert [r.outcome for r in rows[:2]] == ["succeeded", "started"]
    assert rows[0].action == "restart" and rows[0].object == NAME


@pytest.mark.parametrize(("principal", "target", "name", "error"), [
    (OPERATOR, "k8s-dev", "graph-writer", "has no bounds in config (actions.scale): restarting it is not allowed"),
    (VIEWER, "k8s-dev", NAME, "viewers cannot act"),
    (OPERATOR, "k8s-ro", NAME, "is read-only"),
])
async def test_refusals_change_nothing_and_are_audited(restart_config, k8s_api, principal, target, name,
                                                       error) -> None:
    guard = GuardedAction(load_config(restart_config))
    before = template(k8s_api)
    result = await guard.submit(principal, RestartDeployment(target=target, namespace=NS, deployment=name),
                                confirm=name)
    assert result.status == "refused" and error in result.error
    assert template(k8s_api) == before
    assert (await guard.history())[0].outcome == "refused"


def test_restart_from_the_terminal(restart_config, k8s_api, run) -> None:
    run = functools.partial(run, token=add_user(run, restart_config, "otto", "operator"))
    base = ["action", "restart", "--config", str(restart_config), "--target", "k8s-dev", "--namespace", NS,
            "--deployment", NAME]
    code, out, _ = run(*base, "--dry-run")
    assert code == 0 and "rolling restart of hulk-staging/api-gateway" in out and f"--confirm {NAME}" in out
    code, out, _ = run(*base, "--confirm", "web")
    assert code == 1 and "does not match" in out
    assert RESTARTED_AT not in template(k8s_api)[0]
    code, out, _ = run(*base, "--confirm", NAME, "--json")
    assert code == 0 and orjson.loads(out)["status"] == "succeeded"
    assert RESTARTED_AT in template(k8s_api)[0]
    code, _out, err = run("action", "restart", "--config", str(restart_config), "--target", "k8s-dev",
                          "--namespace", "Bad_NS", "--deployment", NAME, "--dry-run")
    assert code == 2 and "namespace" in err
    code, out, _ = run("audit", "list", "--config", str(restart_config), "--action", "restart", "--json")
    outcomes = [orjson.loads(line)["outcome"] for line in out.splitlines()]
    assert outcomes[:4] == ["succeeded", "started", "refused", "dry_run"]
