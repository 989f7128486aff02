"""The RunPod simulator speaks what the real runpod SDK sends: serverless jobs, GraphQL, standalone mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from sandbox.simbase import free_port

pytest_plugins = ["tests.fixtures_runpod"]

VLLM, SDXL = "vllm7x2k9q4p1a", "sdxl3n8b5t1c6y"


def test_endpoint_run_sync_and_health_through_the_sdk(runpod_sim, runpod_globals) -> None:
    endpoint = runpod_globals.Endpoint(VLLM)
    before = endpoint.health()
    assert before["workers"]["idle"] == 1 and before["jobs"]["completed"] == 1284

    output = endpoint.run_sync({"prompt": "Hello, GPU"}, timeout=10)
    failed = endpoint.run_sync({"prompt": "boom", "fail": True}, timeout=10)

    assert output == {"echo": {"prompt": "Hello, GPU"}, "worker": f"{VLLM}-w1"}
    assert failed is None  # a FAILED job has no output
    after = endpoint.health()
    assert after["jobs"]["completed"] == 1285 and after["jobs"]["failed"] == 8


def test_async_job_runs_to_completion_and_a_queued_one_can_be_cancelled(runpod_sim, runpod_globals) -> None:
    endpoint = runpod_globals.Endpoint(SDXL)
    job = endpoint.run({"prompt": "a red fox"})
    assert job.output(timeout=5) == {"echo": {"prompt": "a red fox"}, "worker": f"{SDXL}-w1"}
    assert job.status() == "COMPLETED"

    runpod_sim.control("workers", {"endpoint": SDXL, "running": 0})
    waiting = endpoint.run({"prompt": "nobody will take me"})
    assert waiting.status() == "IN_QUEUE"
    assert endpoint.health()["jobs"]["inQueue"] == 1
    assert waiting.cancel() == {"id": waiting.job_id, "status": "CANCELLED"}
    assert endpoint.health()["jobs"]["inQueue"] == 0


def test_serverless_rejects_a_wrong_key_and_an_unknown_endpoint(runpod_sim, runpod_globals) -> None:
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        runpod_globals.Endpoint(VLLM, api_key="rp_not_this_one").health()
    with pytest.raises(requests.HTTPError, match="404"):
        runpod_globals.Endpoint("missing0000000").health()


def test_graphql_errors_are_shaped_like_runpods(runpod_sim) -> None:
    url, key = f"{runpod_sim.url}/graphql", runpod_sim.api_key
    unauthorised = requests.post(url, json={"query": "{ myself { id } }"}, timeout=5)
    unknown_field = requests.post(url, params={"api_key": key}, json={"query": "{ myself { id shoeSize } }"},
                                  timeout=5)
    refused = requests.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=5, json={
        "query": 'mutation { podStop(input: {podId: "nope"}) { id } }'})
    variables = requests.post(url, params={"api_key": key}, timeout=5, json={
        "query": "query One($id: String!) { pod(input: {podId: $id}) { id name costPerHr } }",
        "variables": {"id": "k3x9f0a2b7c1d4"}})

    assert unauthorised.status_code == 401
    assert unknown_field.json()["errors"][0]["message"] == 'Cannot query field "shoeSize" on type "User".'
    assert refused.json()["errors"][0]["message"] == "Pod nope not found"
    assert variables.json() == {"data": {"pod": {"id": "k3x9f0a2b7c1d4", "name": "llm-finetune-a100",
                                                 "costPerHr": 3.78}}}


def test_utilisation_control_is_what_the_api_reports(runpod_sim, runpod_globals) -> None:
    runpod_sim.control("pod_utilisation", {"pod": "m8q2w5e7r1t6y3", "gpu_util_pct": 64.5})
    answer = runpod_globals.api.graphql.run_graphql_query(
        'query { pod(input: {podId: "m8q2w5e7r1t6y3"}) { runtime { gpus { gpuUtilPercent } } } }')
    assert answer["data"]["pod"]["runtime"]["gpus"] == [{"gpuUtilPercent": 64.5}]


def test_standalone_prints_its_url_serves_and_stops_on_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.runpod_sim", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line.split()[0] == f"http://127.0.0.1:{port}"
        import runpod

        monkeypatch.setenv("RUNPOD_API_BASE_URL", f"http://127.0.0.1:{port}")
        gpus = runpod.get_gpus(api_key="rp_sim_0d7c5e2a9b4f")
        assert "NVIDIA H100 80GB HBM3" in {g["id"] for g in gpus}

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
