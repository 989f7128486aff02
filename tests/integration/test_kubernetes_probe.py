"""The Kubernetes probe through the official client against the API server simulator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import yaml

from hulk_ops.collectors.notify import payloads
from hulk_ops.collectors.notify.tracker import Notice
from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints.probe_once import probe_once
from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator

pytest_plugins = ["tests.fixtures_k8s"]


async def check(target: dict[str, Any], rules: dict | None = None):
    config = parse_config(yaml.safe_dump({"rules": rules or {}, "targets": [target]}))
    [result] = await probe_once(config, config.targets)
    return result


def target(sim: KubernetesSimulator, **extra: Any) -> dict[str, Any]:
    return {"name": "cluster", "kind": "kubernetes", "url": sim.url, "token": DEFAULT_TOKEN, "timeout_s": 3, **extra}


async def test_up_with_version_nodes_deployments_and_capacity(k8s_sim: KubernetesSimulator) -> None:
    result = await check(target(k8s_sim))
    assert result.status == "up", result.error
    assert result.version == "v1.33.4"
    assert 0 < result.latency_ms < 1000
    m = result.metrics
    assert (m["nodes"], m["nodes_ready"], m["nodes_not_ready"]) == (3, 3, 0)
    assert m["node.hulk-gpu-1.gpu_capacity"] == 4 and m["node.hulk-cpu-1.gpu_capacity"] == 0
    assert m["node.hulk-gpu-1.gpu_requests"] == 3  # embedder x2 + reranker x1, one GPU each
    assert m["node.hulk-gpu-1.cpu_allocatable"] == 47.8 and m["node.hulk-gpu-1.memory_allocatable_gib"] == 191
    assert (m["gpu_capacity"], m["gpu_requests"], m["gpu_requests_pct"]) == (4, 3, 75)
    assert (m["deployments"], m["deployments_short"]) == (8, 0)
    assert (m["deploy.hulk-prod.api-gateway.desired"], m["deploy.hulk-prod.api-gateway.available"]) == (3, 3)
    assert (m["pods"], m["pods_running"], m["pods_crashloop"], m["pods_pending"]) == (14, 14, 0, 0)
    # cost view: requests per namespace (api-gateway 3x500m + graph-writer 2x1 + ingest-worker 2x750m)
    assert m["ns.hulk-prod.cpu_requests"] == 5.0 and m["ns.hulk-prod.memory_requests_gib"] == 8.5
    assert (m["ns.ml.cpu_requests"], m["ns.ml.memory_requests_gib"], m["ns.ml.gpu_requests"]) == (10, 40, 3)
    assert m["events_warning"] == 0  # the seeded Warning is two hours old, outside the 1 h window
    node_rows = {row["name"]: row for row in result.details["nodes"]}
    assert node_rows["hulk-gpu-1"]["gpu_product"] == "NVIDIA-A10G"


async def test_down_when_the_server_is_stopped(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.stop()
    result = await check(target(k8s_sim))
    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{k8s_sim.port})"


async def test_down_within_timeout_when_the_server_stalls(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.set_fault("stall")
    started = time.perf_counter()
    result = await check(target(k8s_sim, timeout_s=1))
    elapsed = time.perf_counter() - started
    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 0.9 < elapsed < 2.0


async def test_slow_server_is_degraded_by_the_latency_rule(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.set_fault("slow", 0.3)
    result = await check(target(k8s_sim), rules={"kubernetes": ["latency_ms > 200"]})
    assert result.status == "degraded"
    assert result.latency_ms >= 300
    assert "latency_ms" in result.error


async def test_degraded_when_a_deployment_is_short(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.control("deployment_short", {"namespace": "hulk-prod", "name": "graph-writer", "count": 1})
    result = await check(target(k8s_sim))
    assert result.status == "degraded"
    assert result.error == "deployment hulk-prod/graph-writer: 1 of 2 available"  # the rule names the deployment
    assert result.metrics["deploy.hulk-prod.graph-writer.available"] == 1
    assert result.details["deployments_short"] == [
        {"namespace": "hulk-prod", "name": "graph-writer", "desired": 2, "available": 1}]
    assert result.metrics["events_warning"] == 1
    assert result.details["events"][0]["reason"] == "Unhealthy"


async def test_rule_messages_name_the_node_and_each_short_deployment(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.control("node_not_ready", {"name": "hulk-cpu-1"})
    k8s_sim.control("deployment_short", {"namespace": "hulk-prod", "name": "graph-writer", "count": 2})
    k8s_sim.control("deployment_short", {"namespace": "hulk-prod", "name": "api-gateway", "count": 1})
    result = await check(target(k8s_sim))
    assert result.status == "degraded"
    reasons = result.error.split("; ")
    assert reasons[0] == "node hulk-cpu-1 not ready"
    m = result.metrics
    assert m["deploy.hulk-prod.api-gateway.available"] < 3  # short by one pod, and by another on the lost node
    assert set(reasons[1:]) >= {"deployment hulk-prod/graph-writer: 0 of 2 available",
                                f"deployment hulk-prod/api-gateway: {m['deploy.hulk-prod.api-gateway.available']:.0f} "
                                "of 3 available"}
    assert "deployments_short" not in result.error and "nodes_not_ready" not in result.error, result.error
    # as a notification shows it (the Overview tile shows the same result.error)
    notice = Notice("open", "cluster-1", "cluster", "degraded", (), 1_700_000_000.0, 1_700_000_030.0)
    members = {"cluster": {"status": result.status, "kind": result.kind, "error": result.error}}
    line = payloads.render(notice, "slack", members, "m", None)["blocks"][1]["text"]["text"]
    assert line.startswith("• *cluster* (kubernetes): degraded — node hulk-cpu-1 not ready; deployment hulk-prod/")


async def test_degraded_when_a_pod_crashloops_with_the_event_in_details(k8s_sim: KubernetesSimulator) -> None:
    pod = k8s_sim.control("crashloop_pod", {"namespace": "ml", "deployment": "embedder"})
    result = await check(target(k8s_sim))
    assert result.status == "degraded"
    assert f"pod ml/{pod}: CrashLoopBackOff (6 restarts)" in result.error
    assert result.metrics["pod_restarts"] == 6
    [problem] = result.details["pods_problem"]
    assert (problem["name"], problem["reason"], problem["node"]) == (pod, "CrashLoopBackOff", "hulk-gpu-1")
    [event] = result.details["events"]
    assert event["reason"] == "BackOff" and event["object"] == f"Pod/{pod}" and event["namespace"] == "ml"
    assert event["time"].endswith("Z") and "Back-off restarting failed container" in event["message"]


async def test_node_not_ready_and_warning_events(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.control("node_not_ready", {"name": "hulk-cpu-2"})
    k8s_sim.control("warning_event", {"namespace": "hulk-prod", "kind": "Deployment", "name": "api-gateway",
                                      "reason": "ProgressDeadlineExceeded", "message": "rollout stuck"})
    result = await check(target(k8s_sim, events_window_s=3 * 3600))
    assert result.status == "degraded"
    assert (result.metrics["nodes_not_ready"], result.metrics["node.hulk-cpu-2.ready"]) == (1, 0)
    reasons = [e["reason"] for e in result.details["events"]]
    assert reasons[0] == "ProgressDeadlineExceeded"  # newest first
    assert "NodeNotReady" in reasons and "Unhealthy" in reasons  # the 2 h old one is inside a 3 h window
    assert result.metrics["events_warning"] == len(reasons)


async def test_stuck_pending_gpu_pod_when_scaled_past_the_gpus(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.control("scale", {"namespace": "ml", "name": "embedder", "replicas": 4})  # 5 GPUs wanted, 4 exist
    result = await check(target(k8s_sim, pending_grace_s=0))
    assert result.status == "degraded"
    assert (result.metrics["pods_pending"], result.metrics["pods_pending_stuck"]) == (1, 1)
    assert result.metrics["node.hulk-gpu-1.gpu_requests"] == 4
    assert result.details["pods_problem"][0]["reason"] == "Pending: Unschedulable"
    assert any(e["reason"] == "FailedScheduling" for e in result.details["events"])


async def test_available_replicas_follow_after_the_ready_delay(k8s_sim: KubernetesSimulator) -> None:
    k8s_sim.control("set_ready_delay", {"seconds": 0.5})
    k8s_sim.control("scale", {"namespace": "hulk-prod", "name": "api-gateway", "replicas": 5})
    starting = await check(target(k8s_sim))
    assert starting.metrics["deploy.hulk-prod.api-gateway.available"] == 3
    assert starting.status == "degraded"
    await asyncio.sleep(0.6)
    ready = await check(target(k8s_sim))
    assert ready.status == "up", ready.error
    assert ready.metrics["deploy.hulk-prod.api-gateway.available"] == 5


async def test_wrong_token_is_down_with_authentication_failed(k8s_sim: KubernetesSimulator) -> None:
    result = await check(target(k8s_sim, token="not-the-token"))
    assert result.status == "down"
    assert result.error == "authentication failed (401 Unauthorized)"
    assert "not-the-token" not in str(result.to_dict())


async def test_namespaces_and_small_pages(k8s_sim: KubernetesSimulator) -> None:
    paged = await check(target(k8s_sim, page_size=3))
    assert paged.metrics["pods"] == 14 and paged.metrics["deployments"] == 8
    scoped = await check(target(k8s_sim, namespaces=["ml", "hulk-staging"]))
    assert scoped.status == "up", scoped.error
    assert scoped.metrics["deployments"] == 4 and scoped.metrics["pods"] == 5
    assert not any(name.startswith("ns.hulk-prod.") for name in scoped.metrics)
    assert scoped.metrics["nodes"] == 3


async def test_kubeconfig_with_context(k8s_sim: KubernetesSimulator, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "sim", "cluster": {"server": k8s_sim.url}},
                     {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "ops", "user": {"token": DEFAULT_TOKEN}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "ops"}},
                     {"name": "other", "context": {"cluster": "nowhere", "user": "ops"}}],
    }))
    result = await check({"name": "kc", "kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "sim"})
    assert result.status == "up", result.error
    assert result.metrics["nodes"] == 3
    k8s_sim.stop()
    stopped = await check({"name": "kc", "kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "sim"})
    assert stopped.error == f"connection refused (127.0.0.1:{k8s_sim.port})"  # the server the kubeconfig names
    missing = await check({"name": "kc", "kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "nope"})
    assert missing.status == "down"
    assert missing.error.startswith(f"kubeconfig {kubeconfig}: ") and "nope" in missing.error


async def test_https_to_a_plain_http_server_is_a_tls_error(k8s_sim: KubernetesSimulator) -> None:
    result = await check(target(k8s_sim, url=f"https://127.0.0.1:{k8s_sim.port}"))
    assert result.status == "down"
    assert result.error.startswith(f"TLS error talking to https://127.0.0.1:{k8s_sim.port}: ")
    assert result.error.endswith("(check ca_file / verify_tls)")


async def test_in_cluster_outside_a_cluster_is_down_with_a_reason() -> None:
    result = await check({"name": "incluster", "kind": "kubernetes", "in_cluster": True})
    assert result.status == "down"
    assert result.error.startswith("in-cluster config: ")
