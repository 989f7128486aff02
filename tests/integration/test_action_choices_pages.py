"""The Actions page's forms offer what the latest probe saw (a real probe against real NATS and the Kubernetes and
RunPod simulators, stored through the collector's write path), and GPU types from the RunPod API; picking one
fills the typed field, which still takes anything (tests/integration/test_actions_pages.py types)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from hulk_ops.core.config import load_config
from hulk_ops.entrypoints.bootstrap import build_probe
from tests.fixtures_actions import run_sync
from tests.integration.test_actions_pages import OPERATOR, actions_page, run_page, texts
from tests.seed import seed

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s", "tests.fixtures_runpod"]


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


def probe_and_store(path) -> None:
    """One real probe of every target, stored as the collector stores it."""
    config = load_config(path)

    async def go() -> list:
        found = []
        for target in config.targets:
            probe = build_probe(config, target)
            try:
                found.append(await probe.check())
            finally:
                await probe.close()
        return found

    seed(config, run_sync(go()))


def bounded_k8s_dev(write_config, audit_schema, k8s_sim, monkeypatch):
    """The Kubernetes simulator as target k8s-dev, hulk-staging/api-gateway bounded to 1..4 replicas
    (actions.scale), probed and stored; the pages read that config."""
    from sandbox.k8s_sim import DEFAULT_TOKEN

    path = write_config([{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN}],
                        audit=audit_schema.model_dump(),
                        actions={"scale": [{"target": "k8s-dev", "namespace": "hulk-staging",
                                            "deployment": "api-gateway", "min": 1, "max": 4}]})
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    return path


def pick(at: AppTest, key: str, value: str) -> AppTest:
    at.selectbox(key=key).select(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_purge_picks_a_stream_with_its_figures(write_config, nats_server, audit_schema, stream, monkeypatch) -> None:
    run_sync(stream.create({"worker": None}))
    run_sync(stream.publish(31))
    path = write_config([{"name": "nats-dev", "kind": "nats", "url": nats_server.url, "streams": [stream.name]}],
                        audit=audit_schema.model_dump())
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = run_page(actions_page, OPERATOR)
    box = at.selectbox(key="purge_pick")
    [label] = box.options
    assert label.startswith(f"{stream.name} · 31 msgs · ") and label.endswith(" KiB · 1 consumers · max lag 31"), label
    assert "From the last probe" in texts(at)
    pick(at, "purge_pick", stream.name)
    assert at.text_input(key="purge_stream_name").value == stream.name
    at.button(key="purge_dry").click()
    at.run()
    assert f"purge 31 of 31 message(s) (3.4 KiB) from stream {stream.name}" in texts(at)  # the dry-run of the pick


def test_scale_lists_deployments_and_greys_out_those_without_bounds(write_config, audit_schema, k8s_sim,
                                                                     monkeypatch) -> None:
    bounded_k8s_dev(write_config, audit_schema, k8s_sim, monkeypatch)
    at = run_page(actions_page, OPERATOR)
    options = at.selectbox(key="scale_deployment").options
    assert len(options) == 1 and options[0].startswith("hulk-staging/api-gateway (replicas 1..4) · "), options
    assert options[0].endswith(" available")
    unbounded = at.selectbox(key="scale_unbounded")
    assert unbounded.disabled and len(unbounded.options) == 7, unbounded.options  # the sim's other deployments
    assert unbounded.label == "Not scalable here: no replica bounds in config (actions.scale)"


def test_runpod_forms_pick_a_pod_and_a_gpu_type(write_config, audit_schema, runpod_sim, runpod_target,
                                                monkeypatch) -> None:
    path = write_config([runpod_target(runpod_sim)], audit=audit_schema.model_dump(),
                        actions={"runpod": {"budget_usd": 500}})
    probe_and_store(path)
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = run_page(actions_page, OPERATOR)
    gpus = at.selectbox(key="launch_pick").options
    assert gpus and all(" $/h" in label or "no on-demand offer" in label for label in gpus), gpus
    pods = at.selectbox(key="pod_pick")
    assert pods.options and all(" $/h" in label for label in pods.options), pods.options
    first_pod = next(pod_id for pod_id in runpod_sim.cloud.pods if pod_id in pods.options[0])
    gpu_id = next(g for g in runpod_sim.cloud.gpu_types)
    at.selectbox(key="launch_pick").select(gpu_id)
    at.selectbox(key="pod_pick").select(first_pod)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="launch_gpu_type").value == gpu_id
    assert at.text_input(key="pod_id").value == first_pod
