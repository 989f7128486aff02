"""A large seeded store for the page benchmark: N targets of every kind with H hours of history.

Latest results and state changes go through the collector's real store adapter
(`RedisResultStore.write`, which also appends each target's newest sample and tracked metrics). The
history before that is written as whole hour chunks built with numpy in the store's own packed
layout (`hulk_ops.collectors.codec`: the bytes `encode_sample` / `encode_point` make), because appending 11
million samples one result at a time would take an hour; the read side cannot tell.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import redis

from hulk_ops.collectors.codec import HOUR, POINT_DTYPE, SAMPLE_DTYPE, Keys
from hulk_ops.core.config import Config
from hulk_ops.core.model import StateChange, iso
from hulk_ops.entrypoints.bootstrap import build_store
from hulk_ops.probes import registry
from tests.seed import result

MIX = (("http", 0.30), ("tcp", 0.15), ("redis", 0.20), ("postgres", 0.15), ("nats", 0.10), ("qdrant", 0.05),
       ("neo4j", 0.03), ("kubernetes", 0.01), ("runpod", 0.005), ("prometheus", 0.005))
URL = {"http": "http://10.0.0.1/healthz", "tcp": "tcp://10.0.0.1:22", "redis": "redis://10.0.0.1:6379",
       "postgres": "postgresql://10.0.0.1/app", "nats": "nats://10.0.0.1:4222", "qdrant": "http://10.0.0.1:6333",
       "neo4j": "bolt://10.0.0.1:7687", "kubernetes": "https://10.0.0.1:6443", "runpod": "https://api.runpod.io",
       "prometheus": "http://10.0.0.1:9090"}
MEDIAN_MS = {"http": 40.0, "tcp": 0.8, "redis": 0.4, "postgres": 1.2, "nats": 0.6, "qdrant": 3.0, "neo4j": 4.0,
             "kubernetes": 25.0, "runpod": 180.0, "prometheus": 12.0}
OTHER_SHARE, OTHER_MEDIAN_MS = 0.005, 2.0  # every other registered kind (mysql, plugins), from its example target
NODES, NAMESPACES = 8, ("shop", "search", "ml", "batch", "web", "ops")
GIB = 1 << 30


def fleet_targets(n: int) -> list[dict[str, Any]]:
    """n targets: the MIX shares, and every other registered kind's share taken from the largest (http)."""
    listed = {kind for kind, _share in MIX}
    others = _targets([(k, OTHER_SHARE) for k in registry.kinds() if k not in listed and registry.example(k)], n)
    mix = _targets(MIX, n)
    excess = len(mix) + len(others) - n
    if excess > 0:
        largest = [t["name"] for t in mix if t["kind"] == MIX[0][0]]
        gone = set(largest[-excess:])
        mix = [t for t in mix if t["name"] not in gone]
    targets = (mix + others)[:n]
    dbs = [t["name"] for t in targets if t["kind"] == "postgres"]
    for j, t in enumerate(x for x in targets if x["kind"] == "http"):
        t["depends_on"] = [dbs[j % len(dbs)]] if dbs else []
    return targets


def _targets(mix: Iterable[tuple[str, float]], n: int) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for kind, share in mix:
        for i in range(max(1, round(n * share))):
            base = URL.get(kind) or registry.example(kind) or {}
            t: dict[str, Any] = {**({"url": base} if isinstance(base, str) else base), "name": f"{kind}-{i:04d}",
                                 "kind": kind, "interval_s": 15}
            if kind == "runpod":
                t["api_key"] = "bench-key"
            if kind == "kubernetes":
                t["token"] = "bench-token"
            targets.append(t)
    return targets


def metrics_of(kind: str, i: int, growth: float) -> tuple[dict[str, float], dict[str, Any]]:
    """Newest metrics and details of target i of a kind; `growth` in [0, 1] moves fill levels up."""
    if kind == "redis":
        used = (0.3 + 0.5 * growth) * GIB
        return {"used_memory_bytes": used, "maxmemory_bytes": GIB, "memory_used_pct": 100 * used / GIB,
                "connected_clients": 40 + i % 50, "maxclients": 10_000}, {}
    if kind == "postgres":
        return {"connections": 20 + 60 * growth, "max_connections": 200, "database_size_bytes": 5e9 * (1 + growth)}, {}
    if kind == "nats":
        return {"js.storage_bytes": 2e9 * (0.2 + growth * 0.3), "js.max_storage_bytes": 1e10, "js.memory_bytes": 1e8,
                "stream.ORDERS.bytes": 5e8 * (0.2 + growth), "stream.ORDERS.max_bytes": 1e9,
                "stream.ORDERS.messages": 1e6 * (1 + growth), "consumer.ORDERS.worker.pending": 100 * growth}, {}
    if kind == "qdrant":
        return {"points_total": 1e6 * (1 + growth), "collection.docs.points": 1e6 * (1 + growth)}, {}
    if kind == "neo4j":
        return {"databases": 3, "databases_online": 3, "databases_offline": 0}, {}
    if kind == "kubernetes":
        m: dict[str, float] = {}
        for n in range(NODES):
            m.update({f"node.n{n}.cpu_allocatable": 32, f"node.n{n}.memory_allocatable_gib": 128,
                      f"node.n{n}.gpu_allocatable": 4 if n < 2 else 0, f"node.n{n}.cpu_requests": 10 + 16 * growth,
                      f"node.n{n}.memory_requests_gib": 40 + 50 * growth, f"node.n{n}.gpu_requests": 2 if n < 2 else 0})
        for key in ("cpu", "memory", "gpu"):
            alloc = "memory_allocatable_gib" if key == "memory" else f"{key}_allocatable"
            used = "memory_requests_gib" if key == "memory" else f"{key}_requests"
            m[alloc] = sum(v for k, v in m.items() if k.endswith("." + alloc))
            m[used] = sum(v for k, v in m.items() if k.endswith("." + used))
        for ns in NAMESPACES:
            m.update({f"ns.{ns}.cpu_requests": 12.0, f"ns.{ns}.memory_requests_gib": 48.0, f"ns.{ns}.gpu_requests": 1})
        events = [{"time": iso_now(-60 * k), "type": "Warning", "reason": "BackOff", "object": f"Pod/web-{k}",
                   "namespace": "web", "message": "Back-off restarting failed container", "count": k + 1}
                  for k in range(20)]
        return m, {"events": events}
    if kind == "runpod":
        pods = [{"id": f"p{i}-{k}", "name": f"train-{k}", "status": "RUNNING" if k < 4 else "EXITED",
                 "gpu_type": "A100 80GB", "gpu_count": 1 + k % 2, "cost_per_hr": 1.89 * (1 + k % 2),
                 "uptime_s": 3600 * (k + 1), "gpu_util_pct": 2.0 if k == 0 else 85.0, "idle": k == 0}
                for k in range(5)]
        running = [p for p in pods if p["status"] == "RUNNING"]
        return {"cost_per_hr_total": sum(p["cost_per_hr"] for p in running), "pods_running": len(running),
                "gpus_running": sum(p["gpu_count"] for p in running)}, {"pods": pods}
    if kind == "prometheus":
        alerts = [{"name": f"HighErrorRate{k}", "severity": "warning", "state": "firing",
                   "active_at": iso_now(-600 * (k + 1)), "summary": "5xx above 2 %", "labels": {"job": "api"}}
                  for k in range(3)]
        return {"alerts_firing": 3}, {"alerts": alerts}
    if kind in ("http", "tcp"):
        return {"status_code": 200}, {}
    return catalog_metrics(kind, i), {}


def catalog_metrics(kind: str, i: int) -> dict[str, float]:
    """One value for each key of the kind's catalog (each `<label>` filled in twice), for kinds without a model."""
    catalog = registry.catalog(kind)
    out: dict[str, float] = {}
    for n, spec in enumerate(catalog or ()):
        for j in range(2 if spec.labels else 1):
            key = ".".join(f"x{j}" if s.startswith("<") else s for s in spec.segments)
            out[key] = float((i + n + j) % 97)
    return out


def iso_now(offset_s: float) -> str:
    return iso_at(time.time() + offset_s)


TREND_METRICS = {"redis": ("used_memory_bytes", "connected_clients"), "postgres": ("connections",
                 "database_size_bytes"), "nats": ("js.storage_bytes", "js.memory_bytes", "stream.ORDERS.bytes",
                 "stream.ORDERS.messages", "consumer.ORDERS.worker.pending"), "qdrant": ("collection.docs.points",),
                 "neo4j": ("databases", "databases_offline"), "runpod": ("cost_per_hr_total", "pods_running",
                                                                         "gpus_running")}


COUNTS = {"pods_running", "gpus_running", "databases", "databases_offline", "connected_clients", "connections"}


def seed_fleet(config: Config, hours: float, now: float, down: int = 5) -> dict[str, int]:
    """Write the fleet's latest results, state changes and `hours` of history. Returns counts."""
    targets = config.targets
    rng = np.random.default_rng(7)
    keys = Keys(config.store.prefix)
    client = redis.Redis.from_url(config.store.redis_url)
    roots = [t.name for t in targets if t.kind == "postgres"][:down]
    failing = set(roots) | {t.name for t in targets if set(t.depends_on) & set(roots)}
    results, changes, written = [], [], {"samples": 0, "points": 0}
    pipe = client.pipeline(transaction=False)
    first = now - hours * 3600
    for n, t in enumerate(targets):
        offset = rng.uniform(0, t.interval_s)
        ts = np.arange(first + offset, now, t.interval_s)
        lat = rng.lognormal(math.log(MEDIAN_MS.get(t.kind, OTHER_MEDIAN_MS)), 0.35, ts.size)
        status = np.zeros(ts.size, dtype=np.uint8)
        status[rng.random(ts.size) < 0.0005] = 2
        if t.name in failing:
            status[ts > now - 1200] = 2
        # every sample but the newest (the adapter appends that one with the latest result)
        _write_chunks(pipe, keys.history, t.name, ts[:-1], SAMPLE_DTYPE, {"status": status[:-1], "latency": lat[:-1]})
        written["samples"] += ts.size
        m, details = metrics_of(t.kind, n, 1.0)
        for metric in TREND_METRICS.get(t.kind, ()) + (_k8s_series(m) if t.kind == "kubernetes" else ()):
            if metric not in m:
                continue
            growth = (ts - first) / max(now - first, 1)
            if metric in COUNTS:  # counts move in steps, not every sample
                values = np.round(m[metric] * (0.6 + 0.4 * growth))
            else:
                values = m[metric] * (0.6 + 0.4 * growth) * rng.uniform(0.98, 1.02, ts.size)
            _write_chunks(pipe, lambda name, hour, metric=metric: keys.metric(name, metric, hour), t.name, ts[:-1],
                          POINT_DTYPE, {"value": values[:-1]})
            pipe.sadd(keys.metric_index(t.name), metric)
            written["points"] += ts.size
        final = "down" if t.name in failing else "up"
        results.append(result(t.name, t.kind, final, float(ts[-1]), float(lat[-1]), "7.2.4", metrics=m,
                              details=details, error="connection refused (10.0.0.1:5432)" if final == "down" else None))
        if final == "down":
            changes.append(StateChange(t.name, t.kind, "up", "down", "connection refused",
                                       iso_at(now - 1200 + n % 60)))
        if n % 200 == 199:
            pipe.execute()
    pipe.execute()
    client.set(keys.last_write, repr(now))
    client.close()
    asyncio.run(_write_latest(config, results, changes))
    return {"targets": len(targets), **written, "events": len(changes)}


def iso_at(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


def _k8s_series(m: dict[str, float]) -> tuple[str, ...]:
    return tuple(k for k in m if k.endswith(("_requests", "_requests_gib")))


def _write_chunks(pipe: Any, key_of: Any, name: str, ts: np.ndarray, dtype: np.dtype,
                  columns: dict[str, np.ndarray]) -> None:
    hours = (ts // HOUR).astype(np.int64)
    for hour in np.unique(hours):
        sel = hours == hour
        chunk = np.zeros(int(sel.sum()), dtype=dtype)
        chunk["ds"] = np.minimum(((ts[sel] % HOUR) * 10 + 1e-6).astype(np.int64), 35_999)
        for col, values in columns.items():
            chunk[col] = values[sel]
        pipe.set(key_of(name, int(hour)), chunk.tobytes(), ex=2 * 86400)


async def _write_latest(config: Config, results: list, changes: list) -> None:
    store = build_store(config)
    try:
        for start in range(0, len(results), 500):
            await store.write(results[start:start + 500], [])
        await store.write([], changes)
    finally:
        await store.close()

