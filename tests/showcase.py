"""A small, realistic store for the browser test and the README screenshots: every backend kind, 6 h of
history at one sample a minute, an open incident with dependents, alerts, Kubernetes warnings, GPU pods,
streams filling up and versions that drift from the radar. Written through the real store adapter."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hulk_ops.core.config import Config
from hulk_ops.core.model import StateChange, iso
from tests.seed import result, seed

GIB = 1 << 30
HOURS = 6
STEP = 60.0


def targets() -> list[dict[str, Any]]:
    t = [
        {"name": "orders-db", "kind": "postgres", "url": "postgresql://orders@10.0.1.5/orders",
         "slo": {"availability": 99.95}},
        {"name": "analytics-db", "kind": "postgres", "url": "postgresql://ro@10.0.1.6/analytics"},
        {"name": "cache", "kind": "redis", "url": "redis://10.0.1.7:6379"},
        {"name": "sessions", "kind": "redis", "url": "redis://10.0.1.8:6379"},
        {"name": "event-bus", "kind": "nats", "url": "nats://10.0.1.9:4222"},
        {"name": "vectors", "kind": "qdrant", "url": "http://10.0.1.10:6333"},
        {"name": "graph", "kind": "neo4j", "url": "bolt://10.0.1.11:7687"},
        {"name": "k8s-main", "kind": "kubernetes", "url": "https://10.0.0.1:6443", "token": "showcase"},
        {"name": "gpu-cloud", "kind": "runpod", "api_key": "showcase", "endpoints": ["embed-v2"]},
        {"name": "prometheus", "kind": "prometheus", "url": "http://10.0.1.12:9090"},
        {"name": "checkout-api", "kind": "http", "url": "http://checkout/healthz", "depends_on": ["orders-db"]},
        {"name": "payments", "kind": "http", "url": "http://payments/healthz", "depends_on": ["checkout-api"]},
        {"name": "search-api", "kind": "http", "url": "http://search/healthz", "depends_on": ["vectors", "cache"]},
        {"name": "ssh-bastion", "kind": "tcp", "url": "tcp://10.0.0.2:22"},
    ]
    for target in t:
        target["interval_s"] = STEP
        target["timeout_s"] = 5
    return t


SECTIONS = {"slo": {"availability": 99.9, "latency_p95_ms": 250}, "cost": {"monthly_budget_usd": 24000},
            "actions": {"prices": {"cpu_hour": 0.031, "gib_hour": 0.004, "gpu_hour": 1.89}},
            "dashboard": {"title": "hulk-ops · showcase", "refresh_s": 30}}
LATENCY = {"postgres": 1.5, "redis": 0.4, "nats": 0.7, "qdrant": 4.0, "neo4j": 6.0, "kubernetes": 28.0,
           "runpod": 190.0, "prometheus": 9.0, "http": 45.0, "tcp": 1.1}
VERSIONS = {"orders-db": "16.4", "analytics-db": "15.8", "cache": "7.2.5", "sessions": "7.0.15",
            "event-bus": "2.10.22", "vectors": "1.19.0", "graph": "5.26.1", "k8s-main": "v1.33.4",
            "prometheus": "2.53.2", "checkout-api": "nginx/1.27.1", "payments": "envoy", "search-api": None,
            "gpu-cloud": None, "ssh-bastion": None}
PODS = [
    {"id": "pz1", "name": "train-llm-a", "status": "RUNNING", "gpu_type": "H100 80GB", "gpu_count": 4,
     "cost_per_hr": 11.96, "uptime_s": 18_000, "gpu_util_pct": 93.0, "memory_util_pct": 71.0, "idle": False},
    {"id": "pz2", "name": "notebook-ana", "status": "RUNNING", "gpu_type": "A100 80GB", "gpu_count": 1,
     "cost_per_hr": 1.89, "uptime_s": 9_000, "gpu_util_pct": 0.5, "memory_util_pct": 3.0, "idle": True},
    {"id": "pz3", "name": "eval-batch", "status": "EXITED", "gpu_type": "A40", "gpu_count": 1,
     "cost_per_hr": 0.44, "uptime_s": 0, "gpu_util_pct": None, "memory_util_pct": None, "idle": None},
]


def metrics_at(name: str, kind: str, f: float, i: int) -> dict[str, float]:
    """Metrics of a target at fraction f in [0, 1] of the seeded span."""
    wave = math.sin(i / 9.0)
    if name == "cache":
        used = (0.58 + 0.12 * f) * GIB
        return {"used_memory_bytes": used, "maxmemory_bytes": GIB, "memory_used_pct": 100 * used / GIB,
                "connected_clients": 180 + 10 * wave, "maxclients": 10_000, "ops_per_sec": 4200 + 300 * wave}
    if kind == "redis":
        return {"used_memory_bytes": 0.21 * GIB, "maxmemory_bytes": 2 * GIB, "connected_clients": 40,
                "maxclients": 10_000}
    if kind == "postgres":
        return {"connections": round(60 + 25 * f + 5 * wave), "max_connections": 200,
                "database_size_bytes": 48e9 + 2.1e9 * f}
    if kind == "nats":
        return {"js.storage_bytes": 6.1e9 + 1.4e9 * f, "js.max_storage_bytes": 10e9, "js.memory_bytes": 2e8,
                "stream.ORDERS.bytes": 7.0e8 + 1.6e8 * f, "stream.ORDERS.max_bytes": 1e9,
                "stream.ORDERS.messages": 2.4e6 + 3e5 * f, "consumer.ORDERS.billing.pending": 40 + 900 * f ** 2}
    if kind == "qdrant":
        return {"points_total": 3.1e6 + 2e5 * f, "collection.products.points": 2.2e6 + 2e5 * f,
                "collection.faq.points": 9e5, "collections": 2}
    if kind == "neo4j":
        return {"databases": 3, "databases_online": 3, "databases_offline": 0}
    if kind == "kubernetes":
        return k8s_metrics(f)
    if kind == "runpod":
        running = [p for p in PODS if p["status"] == "RUNNING"]
        return {"cost_per_hr_total": sum(p["cost_per_hr"] for p in running) if f > 0.3 else 11.96,
                "pods_running": len(running) if f > 0.3 else 1, "gpus_running": 5 if f > 0.3 else 4,
                "endpoint.embed-v2.workers_running": 2 if f > 0.6 else 1}
    if kind == "prometheus":
        return {"targets_up": 42, "targets_down": 0, "alerts_firing": 2}
    return {"status_code": 200}


def k8s_metrics(f: float) -> dict[str, float]:
    m: dict[str, float] = {}
    for node, gpu in (("cpu-1", 0), ("cpu-2", 0), ("gpu-1", 4)):
        m.update({f"node.{node}.cpu_allocatable": 31.5, f"node.{node}.memory_allocatable_gib": 122.0,
                  f"node.{node}.gpu_allocatable": gpu, f"node.{node}.cpu_requests": 18 + 9 * f,
                  f"node.{node}.memory_requests_gib": 70 + 22 * f, f"node.{node}.gpu_requests": 3 if gpu else 0})
    for key, alloc in (("cpu_requests", "cpu_allocatable"), ("memory_requests_gib", "memory_allocatable_gib"),
                       ("gpu_requests", "gpu_allocatable")):
        m[key] = sum(v for k, v in m.items() if k.endswith("." + key))
        m[alloc] = sum(v for k, v in m.items() if k.endswith("." + alloc))
    for ns, cpu, mem, gpu in (("shop", 22, 80, 0), ("search", 14, 64, 0), ("ml", 18, 96, 3), ("ops", 4, 16, 0)):
        m.update({f"ns.{ns}.cpu_requests": cpu, f"ns.{ns}.memory_requests_gib": mem, f"ns.{ns}.gpu_requests": gpu})
    return m


def details(kind: str, now: float) -> dict[str, Any]:
    if kind == "runpod":
        return {"pods": PODS, "endpoints": [{"id": "embed-v2", "up": True, "error": None,
                                             "workers": {"running": 2, "idle": 1}, "jobs": {"inQueue": 0,
                                                                                            "inProgress": 0}}]}
    if kind == "prometheus":
        return {"alerts": [
            {"name": "PostgresDown", "severity": "critical", "state": "firing", "active_at": at(now - 700),
             "summary": "orders-db is not answering", "labels": {"instance": "10.0.1.5:5432"}},
            {"name": "HighErrorRate", "severity": "warning", "state": "firing", "active_at": at(now - 640),
             "summary": "checkout 5xx above 5 %", "labels": {"service": "checkout"}}]}
    if kind == "kubernetes":
        return {"events": [
            {"time": at(now - 660), "type": "Warning", "reason": "BackOff", "object": "Pod/checkout-7d9f",
             "namespace": "shop", "message": "Back-off restarting failed container checkout", "count": 6},
            {"time": at(now - 1500), "type": "Warning", "reason": "FailedScheduling", "object": "Pod/train-2",
             "namespace": "ml", "message": "0/3 nodes are available: insufficient nvidia.com/gpu", "count": 2}]}
    return {}


def at(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


def seed_showcase(config: Config, now: float) -> None:
    rng = np.random.default_rng(11)
    down_from = now - 720  # orders-db goes down 12 minutes ago and takes checkout and payments with it
    results = []
    steps = int(HOURS * 3600 / STEP)
    for n, t in enumerate(config.targets):
        base = LATENCY[t.kind]
        for i in range(steps):
            ts = now - (steps - i) * STEP + n  # the newest sample is fresh
            f = i / (steps - 1)
            failing = t.name in ("orders-db", "checkout-api", "payments") and ts >= down_from
            status = "down" if failing and t.name != "payments" else ("degraded" if failing else "up")
            spike = 3.0 if 0.55 < f < 0.62 and t.kind in ("http", "postgres") else 1.0
            latency = None if status == "down" else float(base * spike * rng.lognormal(0, 0.25))
            error = {"orders-db": "connection refused (10.0.1.5:5432)", "checkout-api": "expected status 200, got 503",
                     "payments": "latency_ms = 900 (> 500)"}.get(t.name) if failing else None
            results.append(result(t.name, t.kind, status, ts, latency, VERSIONS.get(t.name), error=error,
                                  metrics=metrics_at(t.name, t.kind, f, i), details=details(t.kind, now)))
    changes = [
        StateChange("cache", "redis", "up", "degraded", "evicted_keys > 0", at(now - 1700)),
        StateChange("cache", "redis", "degraded", "up", None, at(now - 1550)),
        StateChange("orders-db", "postgres", "up", "down", "connection refused (10.0.1.5:5432)", at(down_from)),
        StateChange("checkout-api", "http", "up", "down", "expected status 200, got 503", at(down_from + 10)),
        StateChange("payments", "http", "up", "degraded", "latency_ms = 900 (> 500)", at(down_from + 20)),
    ]
    seed(config, sorted(results, key=lambda r: r.observed_at), changes)
