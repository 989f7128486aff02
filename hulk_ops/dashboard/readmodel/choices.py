"""What the Actions page's forms offer to pick, read from a target's latest probe result: NATS streams, Kubernetes
deployments and RunPod pods, each with the figures a person chooses by. These are hints for the form; typed input
stays possible and the guard validates every request again on the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hulk_ops.core.action_config import ScaleBounds
from hulk_ops.core.model import ProbeResult

STALE_INTERVALS = 3  # a result older than this many probe intervals is marked stale


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    messages: int | None
    bytes: int | None
    consumers: int | None
    max_lag: int | None  # the largest `pending` (not yet delivered) over its consumers

    def label(self) -> str:
        parts = [self.name]
        if self.messages is not None:
            parts.append(f"{self.messages:,} msgs")
        if self.bytes is not None:
            parts.append(_bytes(self.bytes))
        if self.consumers is not None:
            parts.append(f"{self.consumers} consumers")
        if self.max_lag is not None:
            parts.append(f"max lag {self.max_lag:,}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Deployment:
    namespace: str
    name: str
    desired: int | None
    available: int | None
    bounds: ScaleBounds | None

    @property
    def why_not(self) -> str | None:
        """Why it cannot be scaled from the dashboard (None: it can)."""
        return None if self.bounds is not None else "no replica bounds in config (actions.scale)"

    def label(self) -> str:
        parts = [f"{self.namespace}/{self.name}"]
        if self.bounds is not None:
            parts[0] += f" (replicas {self.bounds.min}..{self.bounds.max})"
        if self.desired is not None and self.available is not None:
            parts.append(f"{self.available}/{self.desired} available")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Pod:
    id: str
    name: str
    status: str
    gpu_type: str
    gpu_count: int
    cost_per_hr: float

    def label(self) -> str:
        name = f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id
        return f"{name} · {self.status.lower()} · {self.gpu_count}x {self.gpu_type} · {self.cost_per_hr:.3f} $/h"


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"  # pragma: no cover - the loop returns at GiB


def age(result: ProbeResult | None, interval_s: float, now: float | None = None) -> tuple[float | None, bool]:
    """(seconds since the result was observed, whether that is stale); (None, True) without a result."""
    if result is None:
        return None, True
    seconds = max(0.0, (time.time() if now is None else now) - result.observed_ts)
    return seconds, seconds > STALE_INTERVALS * interval_s


def streams(result: ProbeResult | None) -> list[Stream]:
    if result is None:
        return []
    found = []
    for entry in result.details.get("streams") or []:
        name = str(entry.get("name") or "")
        if not name:
            continue
        metrics = result.metrics
        lags = [metrics.get(f"consumer.{name}.{c}.pending") for c in entry.get("consumers") or []]
        known = [int(v) for v in lags if v is not None]
        messages, size, consumers = (_int(metrics.get(f"stream.{name}.{m}"))
                                     for m in ("messages", "bytes", "consumers"))
        found.append(Stream(name, messages, size, consumers, max(known) if known else None))
    return found


def deployments(result: ProbeResult | None, target: str, scale: list[ScaleBounds]) -> list[Deployment]:
    """Every deployment the probe saw, plus configured ones it did not see; scalable ones first."""
    bounds = {(b.namespace, b.deployment): b for b in scale if b.target == target}
    seen: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in (result.metrics.items() if result is not None else ()):
        if not key.startswith("deploy."):
            continue
        rest, _, field = key.rpartition(".")
        namespace, _, name = rest.removeprefix("deploy.").partition(".")  # namespaces hold no dots
        if field in ("desired", "available") and namespace and name:
            seen.setdefault((namespace, name), {})[field] = value
    for pair in bounds:
        seen.setdefault(pair, {})
    found = [Deployment(ns, name, _int(values.get("desired")), _int(values.get("available")), bounds.get((ns, name)))
             for (ns, name), values in seen.items()]
    return sorted(found, key=lambda d: (d.bounds is None, d.namespace, d.name))


def pods(result: ProbeResult | None) -> list[Pod]:
    if result is None:
        return []
    found = []
    for entry in result.details.get("pods") or []:
        if not entry.get("id"):
            continue
        found.append(Pod(str(entry["id"]), str(entry.get("name") or ""), str(entry.get("status") or "?"),
                         str(entry.get("gpu_type") or "?"), int(entry.get("gpu_count") or 0),
                         float(entry.get("cost_per_hr") or 0.0)))
    return sorted(found, key=lambda p: (p.status != "RUNNING", -p.cost_per_hr, p.id))


@dataclass(frozen=True, slots=True)
class GpuType:
    id: str
    name: str
    memory_gb: int | None
    price: float | None  # on-demand USD per GPU and hour now; None when RunPod offers none (out of stock)
    stock: str | None

    def label(self) -> str:
        parts = [self.name if self.name and self.name != self.id else self.id]
        if self.memory_gb:
            parts.append(f"{self.memory_gb} GB")
        parts.append(f"{self.price:.2f} $/h" if self.price is not None else "no on-demand offer now")
        if self.stock and self.price is not None:
            parts.append(f"stock {self.stock.lower()}")
        return " · ".join(parts)


# RunPod's GraphQL (the executor reads one type the same way for its dry-run)
GPU_TYPES_QUERY = ("query hulkOpsGpuTypes { gpuTypes { id displayName memoryInGb "
                   "lowestPrice(input: {gpuCount: 1}) { uninterruptablePrice stockStatus } } }")


def gpu_types(answer: dict) -> list[GpuType]:
    """GPU types from RunPod's answer to GPU_TYPES_QUERY: offered ones first, cheapest first."""
    found = []
    for entry in (answer.get("data") or {}).get("gpuTypes") or []:
        if not entry.get("id"):
            continue
        lowest = entry.get("lowestPrice") or {}
        price = lowest.get("uninterruptablePrice")
        found.append(GpuType(str(entry["id"]), str(entry.get("displayName") or ""), _int(entry.get("memoryInGb")),
                             float(price) if price is not None else None, lowest.get("stockStatus")))
    return sorted(found, key=lambda g: (g.price is None, g.price or 0.0, g.id))
