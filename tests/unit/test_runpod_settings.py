"""RunPod probe pieces without a server: settings, config errors, pod and endpoint maths, the base-URL gate."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet
from hulk_ops.entrypoints.cli import main
from hulk_ops.probes import registry
from hulk_ops.probes.runpod import TRACKED_METRICS, endpoint_metrics, pod_metrics, pod_summary
from hulk_ops.probes.runpod_sdk import ApiBaseGate


def target(**overrides: object) -> dict:
    return {"name": "gpu-cloud", "kind": "runpod", "api_key": "rp_key_1", **overrides}


def test_defaults_point_at_runpod_and_the_key_stays_secret() -> None:
    config = parse_config(yaml.safe_dump({"targets": [target()]}))
    settings = config.targets[0]
    assert (settings.url, settings.endpoint_url) == ("https://api.runpod.io", "https://api.runpod.ai/v2")
    assert settings.queue_threshold == 100 and settings.endpoints == []
    assert "rp_key_1" not in repr(settings) and settings.secrets() == ["rp_key_1"]
    assert registry.tracked_metrics("runpod") == TRACKED_METRICS and "cost_per_hr_total" in TRACKED_METRICS


@pytest.mark.parametrize(("overrides", "field", "problem"), [
    ({"api_key": None}, "api_key", "Input should be a valid string"),
    ({"api_key": "  "}, "api_key", "must not be empty"),
    ({"url": "api.runpod.io"}, "url", "must be an http(s) URL"),
    ({"endpoint_url": "ftp://x"}, "endpoint_url", "must be an http(s) URL"),
    ({"endpoints": ["ok-1", "bad id"]}, "endpoints", "bad endpoint id 'bad id'"),
    ({"endpoints": ["a", "a"]}, "endpoints", "duplicate endpoint ids"),
    ({"queue_threshold": 0}, "queue_threshold", "greater than or equal to 1"),
    ({"gpu_budget": 3}, "gpu_budget", "unknown field"),
])
def test_bad_target_is_rejected_by_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                overrides: dict, field: str, problem: str) -> None:
    data = target(**overrides)
    if data["api_key"] is None:
        del data["api_key"]
        problem = "field required"
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"targets": [data]}), encoding="utf-8")

    assert main(["config", "check", str(path)]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hulk-ops: config error: {path}: target 'gpu-cloud' (targets[0]): {field}: ")
    assert problem in err
    assert "rp_key_1" not in err


def test_good_target_passes_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"targets": [target(endpoints=["vllm7x2k9q4p1a"], queue_threshold=20)]}))
    assert main(["config", "check", str(path)]) == 0
    assert "OK, 1 targets (runpod)" in capsys.readouterr().out


def pod(status: str, cost: float, gpus: int, utils: list[float] | None) -> dict:
    runtime = None if utils is None else {"uptimeInSeconds": 60, "gpus": [
        {"id": f"g{i}", "gpuUtilPercent": u, "memoryUtilPercent": u / 2} for i, u in enumerate(utils)]}
    return {"id": "p", "name": "n", "desiredStatus": status, "costPerHr": cost, "gpuCount": gpus,
            "machine": {"gpuDisplayName": "RTX 4090"}, "runtime": runtime, "uptimeSeconds": 0}


def test_cost_counts_running_pods_and_idle_ones_separately() -> None:
    pods = [pod_summary(p, idle_util_pct=5.0) for p in [
        pod("RUNNING", 3.78, 2, [90.0, 80.0]),
        pod("RUNNING", 0.69, 1, [2.0]),         # idle: below 5 %
        pod("RUNNING", 1.03, 1, None),          # starting: no utilisation reported, not idle
        pod("EXITED", 3.29, 1, None),           # stopped: no cost counted
    ]]
    metrics = pod_metrics(pods)
    assert metrics == {"pods_total": 4, "pods_running": 3, "gpus_running": 4, "cost_per_hr_total": 5.5,
                       "pods_idle": 1, "gpus_idle": 1, "cost_per_hr_idle": 0.69,
                       "gpu_util_avg_pct": pytest.approx((85 * 2 + 2) / 3, abs=0.05)}
    assert [p["idle"] for p in pods] == [False, True, None, None]
    assert pods[0]["uptime_s"] == 60 and pods[3]["uptime_s"] == 0


def test_endpoint_metrics_and_default_rules() -> None:
    health = {"jobs": {"completed": 10, "failed": 1, "inProgress": 2, "inQueue": 150, "retried": 0},
              "workers": {"idle": 0, "running": 2, "unhealthy": 1}}
    metrics = endpoint_metrics("ep1", health, queue_threshold=100)
    assert metrics["endpoint.ep1.jobs_in_queue"] == 150 and metrics["endpoint.ep1.queue_used_pct"] == 150.0
    assert metrics["endpoint.ep1.workers_throttled"] == 0  # absent counts are zero

    result = ProbeResult("t", "runpod", "up", 12.0, None, {k: float(v) for k, v in metrics.items()}, None, "now")
    judged = RuleSet.for_target("runpod", [], []).evaluate(result)
    assert judged.status == "degraded"
    assert judged.error == ("endpoint ep1: 1 unhealthy worker(s); "
                            "endpoint ep1: queue at 150% of its threshold (150 jobs)")


def test_gate_lets_one_base_run_concurrently_and_makes_another_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULK_TEST_GATE", "original")
    gate = ApiBaseGate("HULK_TEST_GATE")
    seen: list[tuple[str, str | None]] = []
    inside = threading.Barrier(2, timeout=5)

    def call(value: str, hold_s: float, barrier: bool) -> None:
        with gate.use(value, timeout=5):
            if barrier:
                inside.wait()  # both "a" calls are inside at once: same base runs concurrently
            seen.append((value, os.environ.get("HULK_TEST_GATE")))
            time.sleep(hold_s)

    first = [threading.Thread(target=call, args=("a", 0.2, True)) for _ in range(2)]
    for t in first:
        t.start()
    time.sleep(0.05)
    other = threading.Thread(target=call, args=("b", 0.0, False))
    other.start()
    for t in [*first, other]:
        t.join(5)

    assert seen == [("a", "a"), ("a", "a"), ("b", "b")]  # b only ran after both a calls had left
    assert os.environ["HULK_TEST_GATE"] == "original"


def test_gate_waits_no_longer_than_the_timeout() -> None:
    gate = ApiBaseGate("HULK_TEST_GATE_2")
    release = threading.Event()

    def hold() -> None:
        with gate.use("a", timeout=5):
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError), gate.use("b", timeout=0.2):
        pass
    assert 0.2 <= time.monotonic() - started < 1.0
    release.set()
    holder.join(5)
    assert "HULK_TEST_GATE_2" not in os.environ


def test_unknown_config_kind_lists_runpod() -> None:
    with pytest.raises(ConfigError, match="runpod"):
        parse_config(yaml.safe_dump({"targets": [{"name": "x", "kind": "runpodz", "url": "u"}]}))


def test_gate_does_not_let_a_busy_base_starve_another() -> None:
    gate = ApiBaseGate("HULK_TEST_GATE_3")
    release = threading.Event()
    order: list[str] = []

    def call(value: str, hold: threading.Event | None) -> None:
        with gate.use(value, timeout=5):
            order.append(value)
            if hold is not None:
                hold.wait(5)

    stuck = threading.Thread(target=call, args=("a", release))  # e.g. a request to a stalled API
    stuck.start()
    time.sleep(0.05)
    waiting = threading.Thread(target=call, args=("b", None))
    waiting.start()
    deadline = time.monotonic() + 2
    while not gate._queue and time.monotonic() < deadline:
        time.sleep(0.01)
    newcomer = threading.Thread(target=call, args=("a", None))  # same base as the running group
    newcomer.start()
    time.sleep(0.1)
    assert order == ["a"]  # the newcomer queues behind "b" instead of joining the busy group
    release.set()
    for t in (stuck, waiting, newcomer):
        t.join(5)
    assert order == ["a", "b", "a"]
