"""Suggested-fix rules: what each finds in a probe result and the request it pre-fills."""

from __future__ import annotations

import pytest

from hulk_ops.actions.model import parse_request
from hulk_ops.core.action_config import ActionsSettings
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet
from hulk_ops.core.suggestions import FIX_RULES, suggest

pytestmark = pytest.mark.unit
ACTIONS = ActionsSettings.model_validate({
    "scale": [{"target": "k8s", "namespace": "hulk", "deployment": "api", "min": 1, "max": 4}],
    "endpoint_workers": [{"target": "gpu", "endpoint": "ep1", "min": 1, "max": 8}],
})


def result(kind: str, metrics: dict | None = None, details: dict | None = None, status: str = "degraded"):
    return ProbeResult("x", kind, status, 5.0, None, metrics or {}, None, "2026-01-01T00:00:00Z", details or {})


def run(kind: str, target: str, res: ProbeResult, rules: list[str] | None = None):
    found = suggest(kind, target, res, RuleSet.for_target(kind, [], rules or []), ACTIONS)
    for s in found:
        parse_request(s.request)  # every suggestion is a valid request
    return found


def test_short_deployment_with_bounds_suggests_restart_and_scale_within_them() -> None:
    found = run("kubernetes", "k8s", result("kubernetes", details={"deployments_short": [
        {"namespace": "hulk", "name": "api", "desired": 3, "available": 1}]}))
    assert [(s.title, s.blocked) for s in found] == [("Restart hulk/api", None), ("Scale hulk/api to 4", None)]
    assert found[0].reason == "deployment hulk/api: 1 of 3 available"
    assert found[1].request == {"action": "scale", "target": "k8s", "namespace": "hulk", "deployment": "api",
                                "replicas": 4}


def test_short_deployment_at_its_max_or_without_bounds() -> None:
    found = run("kubernetes", "k8s", result("kubernetes", details={"deployments_short": [
        {"namespace": "hulk", "name": "api", "desired": 4, "available": 2},
        {"namespace": "hulk", "name": "web", "desired": 2, "available": 0}]}))
    assert [s.title for s in found] == ["Restart hulk/api", "Restart hulk/web"]  # api is at max 4: no scale
    assert found[1].blocked == "hulk/web has no bounds in config (actions.scale)"


def test_crashlooping_pods_point_at_their_deployment() -> None:
    found = run("kubernetes", "k8s", result("kubernetes", details={"pods_problem": [
        {"namespace": "hulk", "name": "api-7d4b9c8f6-x2k9p", "reason": "CrashLoopBackOff"},
        {"namespace": "hulk", "name": "api-7d4b9c8f6-q8w3e", "reason": "CrashLoopBackOff"},
        {"namespace": "hulk", "name": "batch-1", "reason": "Unschedulable"}]}))
    assert [(s.rule, s.title, s.reason) for s in found] == [
        ("crashloop", "Restart hulk/api", "deployment hulk/api: 2 pod(s) crash-looping")]


def test_consumer_over_its_pending_rule_suggests_purge_keep_newest() -> None:
    metrics = {"consumer.ORDERS.billing.pending": 11_000, "consumer.ORDERS.audit.pending": 10_500,
               "consumer.EVENTS.w.pending": 50}
    found = run("nats", "nats", result("nats", metrics))
    assert [(s.title, s.reason) for s in found] == [
        ("Purge ORDERS, keep the newest 10,000", "consumer ORDERS/billing: 11,000 pending (rule > 10,000)")]
    assert found[0].request == {"action": "purge_stream", "target": "nats", "stream": "ORDERS", "keep": 10_000}
    # the target's own rule decides
    assert run("nats", "nats", result("nats", metrics), ["consumer.*.pending > 20000"]) == []
    assert run("nats", "nats", result("nats", {"consumer.EVENTS.w.pending": 50}),
               ["consumer.*.pending > 40"])[0].request["keep"] == 40


def test_deep_queue_raises_max_workers_to_the_bound() -> None:
    metrics = {"endpoint.ep1.queue_used_pct": 250.0, "endpoint.ep1.jobs_in_queue": 25,
               "endpoint.ep2.queue_used_pct": 400.0, "endpoint.ep3.queue_used_pct": 10.0}
    found = run("runpod", "gpu", result("runpod", metrics))
    assert [(s.title, s.blocked) for s in found] == [
        ("Raise max workers of ep1 to 8", None),
        ("Raise max workers of ep2", "endpoint ep2 has no worker bounds in config (actions.endpoint_workers)")]
    assert found[0].request["max_workers"] == 8 and found[0].request["min_workers"] == 1
    assert "25 jobs waiting" in found[0].reason


def test_idle_gpu_pods_are_stopped_one_by_one() -> None:
    pods = [{"id": "p1", "name": "idle-a", "status": "RUNNING", "idle": True, "gpu_util_pct": 1.0, "cost_per_hr": 2},
            {"id": "p2", "name": "busy", "status": "RUNNING", "idle": False, "gpu_util_pct": 90.0},
            {"id": "p3", "name": "off", "status": "EXITED", "idle": None}]
    found = run("runpod", "gpu", result("runpod", details={"pods": pods}))
    assert [(s.title, s.request["pod_id"]) for s in found] == [("Stop pod idle-a", "p1")]


def test_no_suggestion_for_a_down_or_missing_result_or_other_kinds() -> None:
    short = {"deployments_short": [{"namespace": "hulk", "name": "api", "desired": 3, "available": 1}]}
    assert run("kubernetes", "k8s", result("kubernetes", details=short, status="down")) == []
    assert suggest("kubernetes", "k8s", None, RuleSet([]), ACTIONS) == []
    assert run("redis", "r", result("redis", details=short)) == []
    assert {r.kind for r in FIX_RULES} == {"kubernetes", "nats", "runpod"}
