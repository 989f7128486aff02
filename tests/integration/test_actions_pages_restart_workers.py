"""The Actions page's rollout restart and endpoint worker limits, through the dry-run dialog and typed
confirmation, against the Kubernetes and RunPod simulators (probed for real, audited in PostgreSQL)."""

from __future__ import annotations

import pytest
from kubernetes import client

from hulk_ops.actions.executors.kubernetes import RESTARTED_AT
from tests.integration.test_action_choices_pages import bounded_k8s_dev, probe_and_store
from tests.integration.test_actions_pages import OPERATOR, actions_page, run_page, texts

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s", "tests.fixtures_runpod"]
VLLM = "vllm7x2k9q4p1a"


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def confirm(at, name: str) -> None:
    at.text_input(key="confirm_text").input(name)
    at.run()
    at.button(key="confirm_go").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_restart_from_the_page(write_config, audit_schema, k8s_sim, k8s_api, monkeypatch) -> None:
    bounded_k8s_dev(write_config, audit_schema, k8s_sim, monkeypatch)
    at = run_page(actions_page, OPERATOR)
    assert at.radio(key="deployment_verb").options == ["Scale", "Rolling restart"]
    at.radio(key="deployment_verb").set_value("restart")
    at.run()
    at.button(key="restart_dry").click()
    at.run()
    assert "rolling restart of hulk-staging/api-gateway on k8s-dev" in texts(at)
    confirm(at, "api-gateway")
    assert "Done." in texts(at)
    dep = client.AppsV1Api(k8s_api).read_namespaced_deployment("api-gateway", "hulk-staging")
    assert RESTARTED_AT in (dep.spec.template.metadata.annotations or {})


def test_endpoint_workers_from_the_page(write_config, audit_schema, runpod_sim, runpod_target, monkeypatch) -> None:
    path = write_config([runpod_target(runpod_sim)], audit=audit_schema.model_dump(),
                        actions={"endpoint_workers": [{"target": "gpu-cloud", "endpoint": VLLM, "max": 6,
                                                       "usd_per_worker_hour": 0.5}]})
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = run_page(actions_page, OPERATOR)
    [label] = at.selectbox(key="workers_endpoint").options
    assert label.startswith(f"{VLLM} (workers 0..6) · queue "), label
    assert at.selectbox(key="workers_unbounded").disabled
    at.number_input(key="workers_max").set_value(5)
    at.run()
    at.button(key="workers_dry").click()
    at.run()
    assert "workers 0..3 -> 0..5" in texts(at)
    assert "+1.0000 USD/h" in [m.value for m in at.metric]
    confirm(at, VLLM)
    assert "Done." in texts(at)
    assert runpod_sim.cloud.endpoints[VLLM].workers_max == 5
