"""Guarded RunPod launches, stops, terminations and serverless jobs against the RunPod simulator,
through the official SDK, audited in real PostgreSQL."""

from __future__ import annotations

import pytest

from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import Principal, parse_request
from hulk_ops.core.config import load_config

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_runpod"]
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
A100 = "NVIDIA A100-SXM4-80GB"  # seeded at 1.89 USD/GPU/h, 6 free
RUNNING_POD = "k3x9f0a2b7c1d4"  # seeded: llm-finetune-a100, 2 x A100, 3.78 USD/h
VLLM = "vllm7x2k9q4p1a"


@pytest.fixture
def guard(write_config, audit_schema, runpod_sim, runpod_target) -> GuardedAction:
    path = write_config([runpod_target(runpod_sim, name="gpu-cloud")], audit=audit_schema.model_dump(),
                        actions={"prices": {"gpu_hour": 2.5}, "runpod": {"budget_usd": 20, "max_hours": 12}})
    return GuardedAction(load_config(path))


def launch(**fields) -> object:
    return parse_request({"action": "launch_gpu", "target": "gpu-cloud", "gpu_type": A100, "count": 2,
                          "image": "runpod/pytorch:2.4.0-py3.11", "max_hours": 4, **fields})


def pods(sim) -> dict[str, dict]:
    return sim.control("state", {})["pods"]


async def test_launch_dry_run_prices_count_and_runtime(guard, runpod_sim) -> None:
    result = await guard.dry_run(OPERATOR, launch())
    assert result.status == "dry_run", result.message
    assert result.preview.cost_usd_max == pytest.approx(1.89 * 2 * 4)
    assert result.preview.cost_usd_per_hour_delta == pytest.approx(3.78)
    assert result.preview.before == {"running_pods": 3, "cost_usd_per_hour": 5.26}
    assert len(pods(runpod_sim)) == 4  # nothing launched


async def test_launch_really_creates_the_pod(guard, runpod_sim) -> None:
    result = await guard.submit(OPERATOR, launch(name="train-1", env={"MODE": "fast", "HF_TOKEN": "hf_secret"}),
                                confirm="gpu-cloud")
    assert result.status == "succeeded", result.message
    pod_id = result.after["pod_id"]
    assert pods(runpod_sim)[pod_id] == {"name": "train-1", "status": "RUNNING", "gpu_util_pct": 0.0}
    assert result.after["cost_per_hr"] == pytest.approx(3.78)
    created = runpod_sim.cloud.pods[pod_id]
    assert sorted(created.env) == ["HF_TOKEN=hf_secret", "MODE=fast"]  # the real value reached RunPod
    outcome = (await guard.history())[0]
    assert outcome.params["env"] == {"HF_TOKEN": "***", "MODE": "fast"}  # and never the audit log
    assert "hf_secret" not in str(outcome.__dict__)


@pytest.mark.parametrize(("fields", "error"), [
    ({"max_hours": 8}, "over budget: 1.89 USD/GPU/h x 2 x 8 h = 30.24 USD > cap 20.00 USD"),
    ({"max_hours": 13}, "max runtime 13 h exceeds the limit of 12 h"),
    ({"gpu_type": "NVIDIA L40S", "count": 1}, "1 x L40S is out of stock on RunPod"),
    ({"gpu_type": "NVIDIA H100 80GB HBM3", "count": 3, "max_hours": 1}, "3 x H100 SXM is out of stock"),
    ({"gpu_type": "NVIDIA B300"}, "unknown GPU type 'NVIDIA B300' on RunPod (known: NVIDIA A100-SXM4-80GB,"),
])
async def test_launch_refusals_are_clear_and_launch_nothing(guard, runpod_sim, fields, error) -> None:
    result = await guard.submit(OPERATOR, launch(**fields), confirm="gpu-cloud")
    assert result.status == "refused"
    assert error in result.error
    assert len(pods(runpod_sim)) == 4
    assert (await guard.history())[0].outcome == "refused"


async def test_stop_then_terminate_a_pod(guard, runpod_sim) -> None:
    stop = parse_request({"action": "stop_pod", "target": "gpu-cloud", "pod_id": RUNNING_POD})
    dry = await guard.dry_run(OPERATOR, stop)
    assert dry.preview.cost_usd_per_hour_delta == pytest.approx(-3.78)
    assert pods(runpod_sim)[RUNNING_POD]["status"] == "RUNNING"
    assert (await guard.submit(OPERATOR, stop, confirm="llm-finetune-a100")).status == "refused"  # the pod id
    stopped = await guard.submit(OPERATOR, stop, confirm=RUNNING_POD)
    assert stopped.status == "succeeded", stopped.message
    assert stopped.after == {"pod_id": RUNNING_POD, "desired_status": "EXITED"}
    assert pods(runpod_sim)[RUNNING_POD]["status"] == "EXITED"
    again = await guard.submit(OPERATOR, stop, confirm=RUNNING_POD)
    assert again.status == "refused" and "is EXITED, not RUNNING" in again.error

    terminate = parse_request({"action": "terminate_pod", "target": "gpu-cloud", "pod_id": RUNNING_POD})
    gone = await guard.submit(OPERATOR, terminate, confirm=RUNNING_POD)
    assert gone.status == "succeeded" and gone.after["terminated"] is True
    assert RUNNING_POD not in pods(runpod_sim)
    missing = await guard.submit(OPERATOR, terminate, confirm=RUNNING_POD)
    assert missing.status == "refused" and f"pod {RUNNING_POD} not found" in missing.error


async def test_serverless_job(guard, runpod_sim) -> None:
    job = parse_request({"action": "run_job", "target": "gpu-cloud", "endpoint": VLLM, "input": {"prompt": "hi"},
                         "max_hours": 2})
    result = await guard.submit(OPERATOR, job, confirm="gpu-cloud")
    assert result.status == "succeeded", result.message
    assert result.preview.cost_usd_max == pytest.approx(5.0)
    assert result.after["job_id"] in runpod_sim.cloud.endpoints[VLLM].jobs
    over = job.model_copy(update={"max_hours": 9})
    refused = await guard.submit(OPERATOR, over, confirm="gpu-cloud")
    assert refused.status == "refused" and "over budget: 9 h x 2.50 USD/GPU/h = 22.50 USD" in refused.error
    unknown = await guard.dry_run(OPERATOR, job.model_copy(update={"endpoint": "nope"}))
    assert unknown.status == "refused" and "serverless endpoint nope not found" in unknown.error


async def test_wrong_api_key_fails_clearly(guard, runpod_sim) -> None:
    runpod_sim.control("api_key", {"key": "another-key"})
    result = await guard.dry_run(OPERATOR, launch())
    assert result.status == "refused"
    assert result.error == "RunPod gpu-cloud: authentication failed (check api_key)"
