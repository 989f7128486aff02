"""The RunPod probe through the real runpod SDK against the RunPod simulator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from sandbox.runpod_sim import RunpodSimulator

pytest_plugins = ["tests.fixtures_runpod"]

VLLM, SDXL = "vllm7x2k9q4p1a", "sdxl3n8b5t1c6y"  # the seeded serverless endpoints
A100 = "NVIDIA A100-SXM4-80GB"


def running_cost(sdk: Any) -> float:
    """What the account costs per hour, read independently of the probe (the SDK's own get_pods)."""
    return round(sum(p["costPerHr"] for p in sdk.get_pods() if p["desiredStatus"] == "RUNNING"), 4)


async def test_up_with_cost_equal_to_running_pods(
        runpod_sim, runpod_globals, make_runpod_probe, runpod_target) -> None:
    result = await make_runpod_probe(runpod_target(runpod_sim)).check()

    assert result.status == "up", result.error
    assert result.error is None
    assert result.metrics["cost_per_hr_total"] == pytest.approx(running_cost(runpod_globals)) == pytest.approx(5.26)
    assert result.metrics["pods_total"] == 4 and result.metrics["pods_running"] == 3
    assert result.metrics["gpus_running"] == 4
    assert result.metrics["pods_idle"] == 1 and result.metrics["cost_per_hr_idle"] == pytest.approx(0.69)
    assert result.metrics["gpu_util_avg_pct"] == pytest.approx((87 * 2 + 0 + 42) / 4)
    assert 0 < result.latency_ms < 2000
    pods = {p["name"]: p for p in result.details["pods"]}
    assert pods["sd-inference-4090"]["idle"] is True
    assert pods["sd-inference-4090"]["gpu_type"] == "RTX 4090"
    assert pods["llm-finetune-a100"] | {"uptime_s": None} == {
        "id": "k3x9f0a2b7c1d4", "name": "llm-finetune-a100", "status": "RUNNING", "gpu_type": "A100 SXM",
        "gpu_count": 2, "cost_per_hr": 3.78, "uptime_s": None, "pod_type": "RESERVED", "gpu_util_pct": 87.0,
        "memory_util_pct": 71.0, "idle": False}
    assert pods["llm-finetune-a100"]["uptime_s"] >= 18_720
    assert pods["eval-h100"]["status"] == "EXITED" and pods["eval-h100"]["idle"] is None
    assert result.metrics[f"endpoint.{VLLM}.workers_running"] == 1
    assert result.metrics[f"endpoint.{SDXL}.jobs_completed"] == 5310
    assert result.metrics[f"endpoint.{VLLM}.queue_used_pct"] == 0


async def test_launch_stop_resume_terminate_change_what_the_probe_sees(
        runpod_sim, runpod_globals, make_runpod_probe, runpod_target) -> None:
    sdk, probe = runpod_globals, make_runpod_probe(runpod_target(runpod_sim, endpoints=[]))
    gpus = {g["id"]: g for g in sdk.get_gpus()}
    assert gpus[A100]["displayName"] == "A100 SXM" and gpus[A100]["memoryInGb"] == 80

    pod = sdk.create_pod("train-a100", "runpod/pytorch:2.4.0", A100, gpu_count=2)
    launched = await probe.check()
    assert launched.metrics["pods_running"] == 4 and launched.metrics["gpus_running"] == 6
    assert launched.metrics["cost_per_hr_total"] == pytest.approx(5.26 + 2 * 1.89) == pytest.approx(running_cost(sdk))
    new = next(p for p in launched.details["pods"] if p["id"] == pod["id"])
    assert (new["gpu_type"], new["gpu_count"], new["cost_per_hr"]) == ("A100 SXM", 2, pytest.approx(3.78))

    assert sdk.stop_pod(pod["id"])["desiredStatus"] == "EXITED"
    stopped = await probe.check()
    assert stopped.metrics["pods_total"] == 5 and stopped.metrics["pods_running"] == 3
    assert stopped.metrics["cost_per_hr_total"] == pytest.approx(5.26)

    sdk.resume_pod(pod["id"], gpu_count=1)
    resumed = await probe.check()
    assert resumed.metrics["cost_per_hr_total"] == pytest.approx(5.26 + 1.89)

    sdk.terminate_pod(pod["id"])
    terminated = await probe.check()
    assert terminated.metrics["pods_total"] == 4
    assert pod["id"] not in {p["id"] for p in terminated.details["pods"]}
    assert terminated.metrics["cost_per_hr_total"] == pytest.approx(5.26)


def test_out_of_stock_and_unknown_gpu_are_refused_as_runpod_does(runpod_sim, runpod_globals) -> None:
    sdk = runpod_globals
    l40s = sdk.get_gpu("NVIDIA L40S")
    assert l40s["lowestPrice"]["uninterruptablePrice"] is None  # nothing to rent
    with pytest.raises(sdk.error.QueryError, match="no longer any instances available"):
        sdk.create_pod("sold-out", "runpod/stack", "NVIDIA L40S")
    with pytest.raises(ValueError, match="No GPU found"):  # the SDK checks the type with get_gpu first
        sdk.create_pod("nonsense", "runpod/stack", "NVIDIA B999")

    runpod_sim.control("stock", {"gpu": "NVIDIA L40S", "available": 1})
    pod = sdk.create_pod("now-in-stock", "runpod/stack", "NVIDIA L40S")
    assert sdk.get_pod(pod["id"])["costPerHr"] == pytest.approx(1.03)
    with pytest.raises(sdk.error.QueryError, match="no longer any instances available"):
        sdk.create_pod("second", "runpod/stack", "NVIDIA L40S")  # the one GPU is taken now


async def test_down_when_the_api_is_stopped(runpod_sim, make_runpod_probe, runpod_target) -> None:
    probe = make_runpod_probe(runpod_target(runpod_sim))
    assert (await probe.check()).status == "up"
    runpod_sim.stop()

    started = time.monotonic()
    result = await probe.check()

    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{runpod_sim.port})"
    assert result.metrics == {}
    assert time.monotonic() - started < 2.0


async def test_down_within_timeout_when_the_api_stalls(runpod_sim, make_runpod_probe, runpod_target) -> None:
    probe = make_runpod_probe(runpod_target(runpod_sim, timeout_s=1.0))
    runpod_sim.set_fault("stall")

    started = time.monotonic()
    result = await probe.check()
    elapsed = time.monotonic() - started

    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 1.0 <= elapsed < 1.0 + 1.0

    runpod_sim.set_fault(None)  # the stalled connections are closed: the next cycle recovers
    assert (await probe.check()).status == "up"


async def test_degraded_when_an_endpoint_has_unhealthy_workers(
        runpod_sim, make_runpod_probe, runpod_target) -> None:
    probe = make_runpod_probe(runpod_target(runpod_sim))
    runpod_sim.control("unhealthy_workers", {"endpoint": SDXL, "count": 2})

    result = await probe.check()

    assert result.status == "degraded"
    assert result.metrics[f"endpoint.{SDXL}.workers_unhealthy"] == 2
    assert f"endpoint {SDXL}: 2 unhealthy worker(s)" in result.error
    assert VLLM not in result.error


async def test_degraded_when_the_queue_is_deeper_than_the_threshold(
        runpod_sim, runpod_globals, make_runpod_probe, runpod_target) -> None:
    probe = make_runpod_probe(runpod_target(runpod_sim, queue_threshold=3))
    runpod_sim.control("workers", {"endpoint": VLLM, "idle": 0, "running": 0})  # nobody takes jobs
    endpoint = runpod_globals.Endpoint(VLLM)
    jobs = [endpoint.run({"prompt": f"p{i}"}) for i in range(3)]
    assert {job.status() for job in jobs} == {"IN_QUEUE"}

    at_threshold = await probe.check()
    assert at_threshold.metrics[f"endpoint.{VLLM}.jobs_in_queue"] == 3
    assert at_threshold.status == "up"  # 3 of 3 is full, not over

    endpoint.run({"prompt": "one too many"})
    over = await probe.check()
    assert over.status == "degraded"
    assert over.metrics[f"endpoint.{VLLM}.queue_used_pct"] == pytest.approx(400 / 3, rel=1e-3)
    assert over.error == f"endpoint {VLLM}: queue at 133.3% of its threshold (4 jobs)"

    runpod_sim.control("queue_depth", {"endpoint": SDXL, "count": 500})
    staged = await probe.check()
    assert staged.metrics[f"endpoint.{SDXL}.jobs_in_queue"] == 500


async def test_wrong_key_is_down_authentication_failed(runpod_sim, make_runpod_probe, runpod_target) -> None:
    wrong = "rp_wrong_key_5f1e9a"
    result = await make_runpod_probe(runpod_target(runpod_sim, api_key=wrong)).check()

    assert result.status == "down"
    assert result.error.startswith("authentication failed")
    assert wrong not in result.error and runpod_sim.api_key not in result.error


async def test_revoked_key_turns_a_healthy_target_down(runpod_sim, make_runpod_probe, runpod_target) -> None:
    probe = make_runpod_probe(runpod_target(runpod_sim))
    assert (await probe.check()).status == "up"
    runpod_sim.control("revoke_api_key", {})
    result = await probe.check()
    assert (result.status, result.error.split(":")[0]) == ("down", "authentication failed")


async def test_unknown_endpoint_degrades_without_hiding_the_account(
        runpod_sim, make_runpod_probe, runpod_target) -> None:
    result = await make_runpod_probe(runpod_target(runpod_sim, endpoints=[VLLM, "gone4k2j9x1q7z"])).check()

    assert result.status == "degraded"
    assert result.metrics["endpoint.gone4k2j9x1q7z.up"] == 0
    assert "endpoint gone4k2j9x1q7z: endpoint not found (HTTP 404)" in result.error
    assert result.metrics["cost_per_hr_total"] == pytest.approx(5.26)


async def test_two_accounts_with_different_urls_and_keys_probed_concurrently(
        runpod_sim, make_runpod_probe, runpod_target) -> None:
    with RunpodSimulator(api_key="rp_second_account_77a1") as other:
        with other.lock:
            other.cloud.deploy({"gpuTypeId": A100, "gpuCount": 4, "imageName": "x"})  # 4 x 1.89 more on this one
        first = make_runpod_probe(runpod_target(runpod_sim))
        second = make_runpod_probe(runpod_target(other, name="gpu-cloud-2"))
        for _ in range(3):
            results = await asyncio.gather(first.check(), second.check(), first.check(), second.check())
            assert [r.status for r in results] == ["up"] * 4, [r.error for r in results]
            assert [r.metrics["cost_per_hr_total"] for r in results] == pytest.approx(
                [5.26, 5.26 + 4 * 1.89, 5.26, 5.26 + 4 * 1.89])


def test_cli_probe_of_a_stalled_api_exits_at_the_timeout_not_the_sdks_30_s(runpod_sim, runpod_target, tmp_path) -> None:
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"targets": [runpod_target(runpod_sim, timeout_s=1.0)]}), encoding="utf-8")
    runpod_sim.set_fault("stall")

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hulk_ops", "probe", "--config", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started

    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["error"]) == ("down", "timed out after 1.0 s")
    # with the SDK call in asyncio.to_thread, the exit waited for the SDK's own 30 s timeout (>= 31 s)
    assert elapsed < 25, f"the abandoned SDK request held the exit: {elapsed:.1f} s"


async def test_per_target_writes_with_the_sdks_mutations_need_no_globals(
        runpod_sim, make_runpod_probe, runpod_target) -> None:
    from runpod.api.mutations import pods as pod_mutations

    from hulk_ops.probes import runpod_sdk

    answer, _ = runpod_sdk.graphql(pod_mutations.generate_pod_stop_mutation("k3x9f0a2b7c1d4"),
                                   runpod_sim.api_key, runpod_sim.url, timeout=5)
    assert answer["data"]["podStop"] == {"id": "k3x9f0a2b7c1d4", "desiredStatus": "EXITED"}
    result = await make_runpod_probe(runpod_target(runpod_sim, endpoints=[])).check()
    assert result.metrics["cost_per_hr_total"] == pytest.approx(5.26 - 3.78)
    assert result.metrics["gpus_running"] == 2
