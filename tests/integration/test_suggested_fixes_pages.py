"""Suggested fixes on the Incidents and Target pages for staged incidents (a deployment short of replicas, a
consumer over its pending rule, a deep serverless queue), probed for real against the Kubernetes and RunPod
simulators and real NATS, executed through the dry-run dialog and audited in PostgreSQL."""

from __future__ import annotations

import pytest
from kubernetes import client

from hulk_ops.actions.executors.kubernetes import RESTARTED_AT
from tests.fixtures_actions import run_sync
from tests.integration.test_action_choices_pages import bounded_k8s_dev, probe_and_store
from tests.integration.test_actions_pages import OPERATOR, VIEWER, run_page, texts

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s", "tests.fixtures_runpod"]
VLLM = "vllm7x2k9q4p1a"


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def incidents_page() -> None:
    from hulk_ops.dashboard.views import incidents

    incidents.render()


def target_page() -> None:
    from hulk_ops.dashboard.views import target

    target.render()


def suggestion(at, title: str):
    found = [b for b in at.button if b.label == title]
    assert found, [b.label for b in at.button]
    return found[0]


def execute(at, title: str, name: str) -> None:
    suggestion(at, title).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.text_input(key="confirm_text").input(name)
    at.run()
    at.button(key="confirm_go").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Done." in texts(at), texts(at)


def test_deployment_short_is_restarted_from_the_incident(write_config, audit_schema, k8s_sim, k8s_api,
                                                        monkeypatch) -> None:
    k8s_sim.control("deployment_short", {"namespace": "hulk-staging", "name": "api-gateway"})
    bounded_k8s_dev(write_config, audit_schema, k8s_sim, monkeypatch)

    viewer = run_page(incidents_page, VIEWER)
    assert "Suggested fixes" in texts(viewer)
    assert suggestion(viewer, "Restart hulk-staging/api-gateway").disabled
    assert "viewers cannot act" in texts(viewer)

    at = run_page(incidents_page, OPERATOR)
    assert "deployment hulk-staging/api-gateway: 0 of 1 available" in texts(at)
    assert not suggestion(at, "Scale hulk-staging/api-gateway to 2").disabled
    execute(at, "Restart hulk-staging/api-gateway", "api-gateway")
    dep = client.AppsV1Api(k8s_api).read_namespaced_deployment("api-gateway", "hulk-staging")
    assert RESTARTED_AT in (dep.spec.template.metadata.annotations or {})
    assert dep.status.available_replicas == 1  # the rollout replaced the failing pod


def test_consumer_lag_is_purged_from_the_target_page(write_config, nats_server, audit_schema, stream,
                                                     monkeypatch) -> None:
    run_sync(stream.create({"billing": None}))
    run_sync(stream.publish(30))
    path = write_config([{"name": "nats-dev", "kind": "nats", "url": nats_server.url, "streams": [stream.name],
                          "rules": ["consumer.*.pending > 10"]}], audit=audit_schema.model_dump())
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = AppTestQuery.run(target_page, OPERATOR, {"target": "nats-dev"})
    assert f"consumer {stream.name}/billing: 30 pending (rule > 10)" in texts(at)
    execute(at, f"Purge {stream.name}, keep the newest 10", stream.name)
    messages, _size, pending = run_sync(stream.state())
    assert (messages, pending["billing"]) == (10, 10)


def test_deep_queue_raises_max_workers_from_the_incident(write_config, audit_schema, runpod_sim, runpod_target,
                                                         monkeypatch) -> None:
    runpod_sim.control("queue_depth", {"endpoint": VLLM, "count": 500})
    path = write_config([runpod_target(runpod_sim)], audit=audit_schema.model_dump(),
                        actions={"endpoint_workers": [{"target": "gpu-cloud", "endpoint": VLLM, "max": 6}]})
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = run_page(incidents_page, OPERATOR)
    assert f"endpoint {VLLM}: queue at" in texts(at)
    execute(at, f"Raise max workers of {VLLM} to 6", VLLM)
    assert runpod_sim.cloud.endpoints[VLLM].workers_max == 6


class AppTestQuery:
    @staticmethod
    def run(page, who, query: dict[str, str]):
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_function(page, default_timeout=60)
        at.session_state["principal"] = who
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at


def test_a_fix_the_config_does_not_allow_is_disabled_with_the_reason(write_config, audit_schema, k8s_sim,
                                                                     monkeypatch) -> None:
    from sandbox.k8s_sim import DEFAULT_TOKEN

    k8s_sim.control("deployment_short", {"namespace": "hulk-staging", "name": "api-gateway"})
    path = write_config([{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN}],
                        audit=audit_schema.model_dump())  # no actions.scale bounds at all
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = AppTestQuery.run(target_page, OPERATOR, {"target": "k8s-dev"})
    assert suggestion(at, "Restart hulk-staging/api-gateway").disabled
    assert "hulk-staging/api-gateway has no bounds in config (actions.scale)" in texts(at)
    assert not [b for b in at.button if b.label.startswith("Scale hulk-staging/api-gateway")]
