"""Pure functions turning the official client's model objects into the Kubernetes probe's metrics.

No I/O: they take lists of `V1Node`, `V1Pod`, `V1Deployment`, `CoreV1Event` as the client returns
them and give back flat metrics plus the structured details the views show. Quantities are parsed
with the client's own `parse_quantity`; CPU is in cores, memory in GiB, GPUs in devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import InvalidOperation
from typing import Any

GPU = "nvidia.com/gpu"
GIB = 1024**3
RESOURCES = (("cpu", "cpu", 1.0), ("memory", "memory", float(GIB)), (GPU, "gpu", 1.0))
TERMINAL = ("Succeeded", "Failed")


def quantity(value: Any) -> float:
    from kubernetes.utils import parse_quantity  # here: the client library is not imported to validate a config

    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError, InvalidOperation):
        return 0.0


def _names(prefix: str, amounts: dict[str, float]) -> dict[str, float]:
    """{"cpu": 2.5, "memory": bytes, GPU: 1} -> {prefix.cpu_requests: 2.5, prefix.memory_requests_gib: .., ...}"""
    out = {}
    for key, short, unit in RESOURCES:
        name = f"{short}_requests" if short != "memory" else "memory_requests_gib"
        out[f"{prefix}{name}"] = round(amounts.get(key, 0.0) / unit, 3)
    return out


def pod_requests(pod: Any) -> dict[str, float]:
    """What the scheduler reserves for a pod: max(sum of containers, largest init container) + overhead."""
    spec = pod.spec
    total: dict[str, float] = {}
    for container in spec.containers or []:
        for key, value in ((container.resources and container.resources.requests) or {}).items():
            total[key] = total.get(key, 0.0) + quantity(value)
    for container in spec.init_containers or []:
        for key, value in ((container.resources and container.resources.requests) or {}).items():
            total[key] = max(total.get(key, 0.0), quantity(value))
    for key, value in (spec.overhead or {}).items():
        total[key] = total.get(key, 0.0) + quantity(value)
    return total


def _add(into: dict[str, float], amounts: dict[str, float]) -> None:
    for key, value in amounts.items():
        into[key] = into.get(key, 0.0) + value


def node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def node_metrics(nodes: list[Any], pods: list[Any]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Per node and cluster-wide: readiness, allocatable CPU/memory/GPU, GPU capacity, pod requests."""
    requested: dict[str, dict[str, float]] = {}
    pod_count: dict[str, int] = {}
    for pod in pods:
        node = pod.spec.node_name
        if node and (pod.status is None or pod.status.phase not in TERMINAL):
            _add(requested.setdefault(node, {}), pod_requests(pod))
            pod_count[node] = pod_count.get(node, 0) + 1
    metrics: dict[str, float] = {}
    totals: dict[str, float] = {}
    cluster_requests: dict[str, float] = {}
    rows = []
    for node in nodes:
        name = node.metadata.name
        alloc = {k: quantity(v) for k, v in (node.status.allocatable or {}).items()}
        gpu_capacity = quantity((node.status.capacity or {}).get(GPU, 0))
        ready = node_ready(node)
        row = {"name": name, "ready": ready, "cpu_allocatable": round(alloc.get("cpu", 0.0), 3),
               "memory_allocatable_gib": round(alloc.get("memory", 0.0) / GIB, 3), "gpu_capacity": gpu_capacity,
               "gpu_allocatable": alloc.get(GPU, 0.0), **_names("", requested.get(name, {})),
               "pods": pod_count.get(name, 0), "gpu_product": (node.metadata.labels or {}).get(
                   "nvidia.com/gpu.product"), "kubelet": node.status.node_info.kubelet_version
               if node.status.node_info else None}
        rows.append(row)
        for key in ("ready", "cpu_allocatable", "memory_allocatable_gib", "gpu_capacity", "gpu_allocatable",
                    "cpu_requests", "memory_requests_gib", "gpu_requests", "pods"):
            metrics[f"node.{name}.{key}"] = float(row[key])
        for key in ("cpu_allocatable", "memory_allocatable_gib", "gpu_capacity", "gpu_allocatable"):
            totals[key] = totals.get(key, 0.0) + row[key]
        _add(cluster_requests, requested.get(name, {}))
    ready_count = sum(1 for r in rows if r["ready"])
    metrics.update({"nodes": len(nodes), "nodes_ready": ready_count, "nodes_not_ready": len(nodes) - ready_count})
    metrics.update({k: round(v, 3) for k, v in totals.items()})
    metrics.update(_names("", cluster_requests))
    for short, alloc_key in (("cpu", "cpu_allocatable"), ("memory", "memory_allocatable_gib"), ("gpu",
                                                                                              "gpu_allocatable")):
        used = metrics["memory_requests_gib" if short == "memory" else f"{short}_requests"]
        if totals.get(alloc_key):
            metrics[f"{short}_requests_pct"] = round(100.0 * used / totals[alloc_key], 2)
    return metrics, rows


def waiting_reasons(pod: Any) -> list[str]:
    statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    return [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]


def pod_metrics(pods: list[Any], now: datetime, pending_grace_s: float) -> tuple[dict[str, float], list[dict]]:
    """Counts by phase, CrashLoopBackOff and long-Pending pods (listed in the details), restarts."""
    counts = {"pods": 0, "pods_running": 0, "pods_pending": 0, "pods_pending_stuck": 0, "pods_crashloop": 0,
              "pods_failed": 0, "pod_restarts": 0}
    problems = []
    for pod in pods:
        status = pod.status
        phase = status.phase if status else None
        counts["pods"] += 1
        counts["pods_running"] += phase == "Running"
        counts["pods_failed"] += phase == "Failed"
        restarts = sum(s.restart_count for s in (status.container_statuses or [])) if status else 0
        counts["pod_restarts"] += restarts
        reason = None
        if "CrashLoopBackOff" in waiting_reasons(pod):
            counts["pods_crashloop"] += 1
            reason = "CrashLoopBackOff"
        if phase == "Pending":
            counts["pods_pending"] += 1
            created = pod.metadata.creation_timestamp
            if created and now - created > timedelta(seconds=pending_grace_s):
                counts["pods_pending_stuck"] += 1
                reason = reason or _pending_reason(pod)
        if reason:
            problems.append({"namespace": pod.metadata.namespace, "name": pod.metadata.name, "reason": reason,
                             "node": pod.spec.node_name, "restarts": restarts})
    return {k: float(v) for k, v in counts.items()}, problems


def _pending_reason(pod: Any) -> str:
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"Pending: {condition.reason or 'unschedulable'}"
    reasons = waiting_reasons(pod)
    return f"Pending: {reasons[0]}" if reasons else "Pending"


def namespace_requests(pods: list[Any]) -> dict[str, float]:
    """ns.<ns>.cpu_requests (cores), .memory_requests_gib, .gpu_requests, .pods over non-terminal pods."""
    by_ns: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for pod in pods:
        if pod.status is not None and pod.status.phase in TERMINAL:
            continue
        ns = pod.metadata.namespace
        _add(by_ns.setdefault(ns, {}), pod_requests(pod))
        counts[ns] = counts.get(ns, 0) + 1
    metrics: dict[str, float] = {}
    for ns, amounts in by_ns.items():
        metrics.update(_names(f"ns.{ns}.", amounts))
        metrics[f"ns.{ns}.pods"] = float(counts[ns])
    return metrics


def deployment_metrics(deployments: list[Any]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """deploy.<ns>.<name>.desired / .available; deployments_short counts those with fewer available."""
    metrics: dict[str, float] = {"deployments": float(len(deployments))}
    short = []
    for dep in deployments:
        ns, name = dep.metadata.namespace, dep.metadata.name
        desired = dep.spec.replicas if dep.spec.replicas is not None else 1
        available = (dep.status.available_replicas if dep.status else None) or 0
        metrics[f"deploy.{ns}.{name}.desired"] = float(desired)
        metrics[f"deploy.{ns}.{name}.available"] = float(available)
        if available < desired:
            short.append({"namespace": ns, "name": name, "desired": desired, "available": available})
    metrics["deployments_short"] = float(len(short))
    return metrics, short


def event_time(event: Any) -> datetime | None:
    return (event.last_timestamp or event.event_time or event.first_timestamp
            or (event.metadata.creation_timestamp if event.metadata else None))


def _rv(event: Any) -> int:
    """resourceVersion orders writes within a second (opaque by contract, an etcd revision in practice)."""
    rv = event.metadata.resource_version if event.metadata else None
    return int(rv) if rv and rv.isdigit() else 0


def recent_warnings(events: Iterable[Any], now: datetime, window_s: float, limit: int) -> tuple[int, list[dict]]:
    """Warning events seen within the window, newest first (at most `limit` in the list)."""
    since = now - timedelta(seconds=window_s)
    recent = [(t, e) for e in events if e.type == "Warning" and (t := event_time(e)) is not None and t >= since]
    recent.sort(key=lambda pair: (pair[0], _rv(pair[1])), reverse=True)  # timestamps are whole seconds
    rows = []
    for when, event in recent[:limit]:
        obj = event.involved_object
        rows.append({"time": when.isoformat().replace("+00:00", "Z"), "type": event.type, "reason": event.reason,
                     "object": f"{obj.kind}/{obj.name}", "namespace": obj.namespace or event.metadata.namespace,
                     "message": (event.message or "")[:500], "count": event.count or 1,
                     "component": (event.source.component if event.source else None) or event.reporting_component})
    return len(recent), rows

