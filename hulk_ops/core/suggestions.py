"""Suggested fixes: which guarded actions fit what a target's latest probe result shows.

The rules are data, beside the probe rules (hulk_ops/core/rules.py): each `FixRule` names the kind it
applies to, what it looks for in the result's metrics or details, and the action it proposes with the
parameters filled in. A suggestion is only a pre-filled request: it goes through the guard like any
other (roles, dry-run, typed confirmation, four-eyes, audit). A suggestion the config does not allow
(a deployment or endpoint without bounds) is still listed, with `blocked` saying why.

    deployment short of replicas   -> restart it, or scale it up within its actions.scale bounds
    pods in CrashLoopBackOff       -> restart the deployment that owns them
    consumer over its pending rule -> purge the stream keeping the newest N (N = the rule's threshold)
    endpoint queue over its rule   -> raise the endpoint's max workers to its actions.endpoint_workers max
    idle running GPU pods          -> stop each
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hulk_ops.core.action_config import ActionsSettings
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet


@dataclass(frozen=True, slots=True)
class Suggestion:
    rule: str  # the FixRule's name
    title: str  # what the button says
    reason: str  # what the probe saw
    request: dict[str, Any]  # the request to dry-run (action, target and the pre-filled parameters)
    blocked: str | None = None  # why the config does not allow it (shown disabled)

    @property
    def action(self) -> str:
        return str(self.request["action"])


@dataclass(frozen=True, slots=True)
class Seen:
    """What a rule gets: the target's name, its latest result, its status rules and the actions config."""

    target: str
    result: ProbeResult
    rules: RuleSet
    actions: ActionsSettings

    def threshold(self, metric: str) -> float | None:
        """The lowest value of the `>`/`>=` status rules that match `metric` (None: no such rule)."""
        values = [r.value for r in self.rules.rules if r.op in (">", ">=") and r.matcher().match(metric)]
        return min(values) if values else None


@dataclass(frozen=True, slots=True)
class FixRule:
    name: str
    kind: str
    looks_at: str  # the metric or detail read (documentation; shown in docs/ACTIONS.md)
    action: str
    find: Callable[[Seen], Iterator[Suggestion]] = field(repr=False)


def _short_deployments(seen: Seen) -> Iterator[Suggestion]:
    for dep in seen.result.details.get("deployments_short") or []:
        ns, name = str(dep.get("namespace")), str(dep.get("name"))
        desired, available = int(dep.get("desired") or 0), int(dep.get("available") or 0)
        reason = f"deployment {ns}/{name}: {available} of {desired} available"
        bounds = seen.actions.bounds(seen.target, ns, name)
        blocked = None if bounds else f"{ns}/{name} has no bounds in config (actions.scale)"
        yield Suggestion("deployment_short", f"Restart {ns}/{name}", reason,
                         {"action": "restart", "target": seen.target, "namespace": ns, "deployment": name}, blocked)
        if bounds is None:
            continue
        wanted = min(desired + 1, bounds.max)
        if wanted > desired:
            yield Suggestion("deployment_short", f"Scale {ns}/{name} to {wanted}", reason,
                             {"action": "scale", "target": seen.target, "namespace": ns, "deployment": name,
                              "replicas": wanted})


def _crashloop_owners(seen: Seen) -> Iterator[Suggestion]:
    short = {(d.get("namespace"), d.get("name")) for d in seen.result.details.get("deployments_short") or []}
    owners: dict[tuple[str, str], int] = {}
    for pod in seen.result.details.get("pods_problem") or []:
        if pod.get("reason") != "CrashLoopBackOff":
            continue
        ns, pod_name = str(pod.get("namespace")), str(pod.get("name"))
        # a Deployment's pods are named <deployment>-<template hash>-<suffix>
        owner = re.sub(r"-[a-z0-9]{5,10}-[a-z0-9]{5}$", "", pod_name)
        if owner != pod_name:
            owners[(ns, owner)] = owners.get((ns, owner), 0) + 1
    for (ns, name), count in sorted(owners.items()):
        if (ns, name) in short:
            continue  # already suggested by deployment_short
        bounds = seen.actions.bounds(seen.target, ns, name)
        yield Suggestion("crashloop", f"Restart {ns}/{name}", f"deployment {ns}/{name}: {count} pod(s) crash-looping",
                         {"action": "restart", "target": seen.target, "namespace": ns, "deployment": name},
                         None if bounds else f"{ns}/{name} has no bounds in config (actions.scale)")


CONSUMER_PENDING = re.compile(r"^consumer\.(?P<stream>[^.]+)\.(?P<consumer>.+)\.pending$")


def _consumer_lag(seen: Seen) -> Iterator[Suggestion]:
    worst: dict[str, tuple[float, str, float]] = {}  # stream -> (pending, consumer, threshold)
    for metric, value in seen.result.metrics.items():
        match = CONSUMER_PENDING.match(metric)
        limit = seen.threshold(metric) if match else None
        if match is None or limit is None or not value > limit:
            continue
        stream = match["stream"]
        if stream not in worst or value > worst[stream][0]:
            worst[stream] = (float(value), match["consumer"], limit)
    for stream, (pending, consumer, limit) in sorted(worst.items()):
        keep = max(1, int(limit))
        yield Suggestion("consumer_lag", f"Purge {stream}, keep the newest {keep:,}",
                         f"consumer {stream}/{consumer}: {pending:,.0f} pending (rule > {limit:,.0f})",
                         {"action": "purge_stream", "target": seen.target, "stream": stream, "keep": keep})


ENDPOINT_QUEUE = re.compile(r"^endpoint\.(?P<endpoint>[^.]+)\.queue_used_pct$")


def _deep_queue(seen: Seen) -> Iterator[Suggestion]:
    for metric, value in sorted(seen.result.metrics.items()):
        match = ENDPOINT_QUEUE.match(metric)
        limit = seen.threshold(metric) if match else None
        if match is None or limit is None or not value > limit:
            continue
        endpoint = match["endpoint"]
        queued = seen.result.metrics.get(f"endpoint.{endpoint}.jobs_in_queue")
        reason = f"endpoint {endpoint}: queue at {value:g}% of its threshold" + (
            f" ({queued:,.0f} jobs waiting)" if queued is not None else "")
        bounds = seen.actions.worker_bounds(seen.target, endpoint)
        request = {"action": "endpoint_workers", "target": seen.target, "endpoint": endpoint,
                   "min_workers": bounds.min if bounds else 0, "max_workers": bounds.max if bounds else 0}
        yield Suggestion("deep_queue", f"Raise max workers of {endpoint}" + (f" to {bounds.max}" if bounds else ""),
                         reason, request,
                         None if bounds else f"endpoint {endpoint} has no worker bounds in config "
                                             "(actions.endpoint_workers)")


def _idle_pods(seen: Seen) -> Iterator[Suggestion]:
    for pod in seen.result.details.get("pods") or []:
        if pod.get("status") == "RUNNING" and pod.get("idle"):
            label = pod.get("name") or pod.get("id")
            yield Suggestion("idle_gpu_pod", f"Stop pod {label}",
                             f"pod {label}: GPU {pod.get('gpu_util_pct')}% used, "
                             f"{float(pod.get('cost_per_hr') or 0):.2f} USD/h",
                             {"action": "stop_pod", "target": seen.target, "pod_id": str(pod.get("id"))})


FIX_RULES: tuple[FixRule, ...] = (
    FixRule("deployment_short", "kubernetes", "details.deployments_short", "restart / scale", _short_deployments),
    FixRule("crashloop", "kubernetes", "details.pods_problem (CrashLoopBackOff)", "restart", _crashloop_owners),
    FixRule("consumer_lag", "nats", "consumer.<stream>.<consumer>.pending over its status rule", "purge_stream",
            _consumer_lag),
    FixRule("deep_queue", "runpod", "endpoint.<id>.queue_used_pct over its status rule", "endpoint_workers",
            _deep_queue),
    FixRule("idle_gpu_pod", "runpod", "details.pods (idle: RUNNING below idle_util_pct)", "stop_pod", _idle_pods),
)


def suggest(kind: str, target: str, result: ProbeResult | None, rules: RuleSet,
            actions: ActionsSettings) -> list[Suggestion]:
    """Every suggestion for one target's latest result, in rule order (none for a missing or down result)."""
    if result is None or result.status == "down":
        return []
    seen = Seen(target, result, rules, actions)
    return [s for rule in FIX_RULES if rule.kind == kind for s in rule.find(seen)]
