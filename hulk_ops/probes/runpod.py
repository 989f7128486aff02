"""RunPod probe (the official `runpod` SDK; see `hulk_ops/probes/runpod_sdk.py` for per-target key and URLs).

Latency is the GraphQL ``myself { pods {...} }`` call, which also proves the API key (HTTP 401
or an "unauthorized" error -> down "authentication failed"). Metrics: pods_total, pods_running,
gpus_running, cost_per_hr_total (sum of costPerHr over RUNNING pods), pods_idle / gpus_idle /
cost_per_hr_idle (running pods whose GPUs report a mean utilisation below idle_util_pct),
gpu_util_avg_pct (GPU-weighted, over running pods that report it), endpoints_watched; per watched
serverless endpoint (``/v2/{id}/health``): endpoint.<id>.up, .latency_ms, .workers_idle,
.workers_running, .workers_initializing, .workers_ready, .workers_throttled,
.workers_unhealthy, .jobs_in_queue, .jobs_in_progress, .jobs_completed, .jobs_failed,
.jobs_retried, .queue_used_pct (in-queue jobs as % of queue_threshold).
Details: pods (id, name, status, gpu_type, gpu_count, cost_per_hr, uptime_s, pod_type,
gpu_util_pct, memory_util_pct, idle), endpoints (id, up, error, workers, jobs), user_id.
An endpoint whose health cannot be read is endpoint.<id>.up = 0 (degraded by rule), not down.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import requests
from pydantic import Field, SecretStr, field_validator

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import ProbeResult
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure

if TYPE_CHECKING:
    from types import ModuleType

    from runpod.endpoint.runner import Endpoint, RunPodClient

def _sdk() -> ModuleType:
    """The runpod SDK and our wrapper of it, imported on the first probe: the SDK takes about a second to import,
    which validating a config (every `hulk-ops report`, the dashboard) must not pay."""
    from hulk_ops.probes import runpod_sdk

    return runpod_sdk


def _errors() -> ModuleType:
    from runpod import error

    return error


DEFAULT_API_URL = "https://api.runpod.io"
DEFAULT_ENDPOINT_URL = "https://api.runpod.ai/v2"
MAX_PODS_LISTED = 500
PODS_QUERY = """
query hulkOpsPods {
  myself {
    id
    pods {
      id name desiredStatus costPerHr gpuCount podType uptimeSeconds
      machine { gpuDisplayName }
      runtime { uptimeInSeconds gpus { id gpuUtilPercent memoryUtilPercent } }
    }
  }
}
"""
WORKER_FIELDS = ("idle", "running", "initializing", "ready", "throttled", "unhealthy")
JOB_FIELDS = {"inQueue": "in_queue", "inProgress": "in_progress", "completed": "completed", "failed": "failed",
              "retried": "retried"}


class Settings(TargetSettings):
    kind: Literal["runpod"]
    url: str = Field(DEFAULT_API_URL, min_length=1, description="GraphQL API base; the SDK posts to {url}/graphql")
    api_key: SecretStr
    endpoint_url: str = Field(DEFAULT_ENDPOINT_URL, description="serverless API base ({endpoint_url}/{id}/health)")
    endpoints: list[str] = Field(default_factory=list, max_length=100, description="serverless endpoint ids to watch")
    queue_threshold: int = Field(100, ge=1, description="queued jobs per endpoint that count as a deep queue")
    idle_util_pct: float = Field(5.0, ge=0, le=100, description="a running pod below this GPU % is idle")

    @field_validator("url", "endpoint_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _key_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoint_ids(cls, value: list[str]) -> list[str]:
        for endpoint_id in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", endpoint_id):
                raise ValueError(f"bad endpoint id {endpoint_id!r} (letters, digits, - and _ only)")
        if len(set(value)) != len(value):
            raise ValueError("duplicate endpoint ids")
        return value


@dataclass
class RunpodClient:
    api_key: str
    api_url: str
    serverless: RunPodClient
    endpoints: dict[str, Endpoint] = field(default_factory=dict)


class RunpodProbe(Probe[Settings, RunpodClient]):
    kind = "runpod"
    transient = (ConnectionResetError, BrokenPipeError, requests.exceptions.ConnectionError)

    async def _connect(self) -> RunpodClient:
        s = self.settings
        key = s.api_key.get_secret_value()
        serverless = _sdk().serverless_client(key, s.endpoint_url)
        return RunpodClient(key, s.url, serverless, _sdk().watched_endpoints(serverless, s.endpoints))

    async def _close(self, client: RunpodClient) -> None:
        client.serverless.rp_session.close()

    async def _measure(self, client: RunpodClient) -> Measurement:
        budget = self.settings.timeout_s
        started = time.monotonic()
        try:
            answer, latency_ms = await _sdk().in_thread(_sdk().graphql, PODS_QUERY, client.api_key,
                                                         client.api_url, budget)
        except (_errors().AuthenticationError, _errors().QueryError) as exc:
            raise ProbeFailure(self.describe(exc) or str(exc)) from exc  # the API answered: no client to blame
        myself = (answer.get("data") or {}).get("myself") if isinstance(answer, dict) else None
        if not isinstance(myself, dict):
            raise ProbeFailure(f"RunPod API answered without an account (myself is {myself!r})")
        pods = [pod_summary(p, self.settings.idle_util_pct) for p in myself.get("pods") or []]
        metrics = pod_metrics(pods)
        remaining = max(0.05, budget * 0.9 - (time.monotonic() - started))  # endpoints must not time the probe out
        checks = await asyncio.gather(*(self._endpoint(ep, remaining) for ep in client.endpoints.values()))
        problems: list[str] = []
        for endpoint_id, endpoint_metrics, detail in checks:
            metrics.update(endpoint_metrics)
            if detail.get("error"):
                problems.append(f"endpoint {endpoint_id}: {detail['error']}")
        metrics["endpoints_watched"] = len(checks)
        return Measurement(
            latency_ms=latency_ms,
            metrics=metrics,
            details={"user_id": myself.get("id"), "pods": pods[:MAX_PODS_LISTED],
                     "endpoints": [detail for _, _, detail in checks]},
            note="; ".join(problems) or None,
        )

    async def _endpoint(self, endpoint: Endpoint, budget_s: float) -> tuple[str, dict[str, Any], dict[str, Any]]:
        endpoint_id = endpoint.endpoint_id
        try:
            async with asyncio.timeout(budget_s):
                health, latency_ms = await _sdk().in_thread(_sdk().endpoint_health, endpoint, budget_s)
        except (requests.RequestException, RuntimeError, TimeoutError, ValueError) as exc:
            reason = self.describe(exc) or describe_endpoint_error(exc, budget_s)
            return endpoint_id, {f"endpoint.{endpoint_id}.up": 0}, {"id": endpoint_id, "up": False, "error": reason}
        if not isinstance(health, dict):
            error = f"health answered {type(health).__name__}, not an object"
            return endpoint_id, {f"endpoint.{endpoint_id}.up": 0}, {"id": endpoint_id, "up": False, "error": error}
        metrics = endpoint_metrics(endpoint_id, health, self.settings.queue_threshold)
        metrics[f"endpoint.{endpoint_id}.latency_ms"] = round(latency_ms, 3)
        return endpoint_id, metrics, {"id": endpoint_id, "up": True, "error": None,
                                      "workers": health.get("workers") or {}, "jobs": health.get("jobs") or {}}

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, _errors().AuthenticationError):
            return f"authentication failed: {exc}"
        if isinstance(exc, RuntimeError) and "401" in str(exc):  # the serverless client's "401 Unauthorized | ..."
            return "authentication failed: the serverless API rejected the API key (HTTP 401)"
        if isinstance(exc, _errors().QueryError):
            if re.search(r"unauthori[sz]ed|api key", str(exc), re.IGNORECASE):
                return f"authentication failed: {exc}"
            return f"RunPod API error: {exc}"
        if isinstance(exc, requests.exceptions.JSONDecodeError):
            return f"RunPod API answered with something that is not JSON ({self.settings.url}/graphql)"
        if isinstance(exc, requests.exceptions.Timeout):
            return f"timed out after {self.settings.timeout_s:.1f} s"
        return None


def describe_endpoint_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | requests.exceptions.Timeout):
        return f"health timed out after {timeout:.1f} s"
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        return "endpoint not found (HTTP 404)" if code == 404 else f"health answered HTTP {code}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect to the serverless API"
    return f"{type(exc).__name__}: {exc}"[:300]


def pod_summary(pod: dict[str, Any], idle_util_pct: float) -> dict[str, Any]:
    runtime = pod.get("runtime") or {}
    gpus = [g for g in runtime.get("gpus") or [] if isinstance(g, dict)]
    utils = [float(g["gpuUtilPercent"]) for g in gpus if isinstance(g.get("gpuUtilPercent"), int | float)]
    memory = [float(g["memoryUtilPercent"]) for g in gpus if isinstance(g.get("memoryUtilPercent"), int | float)]
    util = round(sum(utils) / len(utils), 1) if utils else None
    status = str(pod.get("desiredStatus") or "UNKNOWN")
    return {
        "id": pod.get("id"),
        "name": pod.get("name"),
        "status": status,
        "gpu_type": (pod.get("machine") or {}).get("gpuDisplayName"),
        "gpu_count": int(pod.get("gpuCount") or 0),
        "cost_per_hr": float(pod.get("costPerHr") or 0.0),
        "uptime_s": runtime.get("uptimeInSeconds", pod.get("uptimeSeconds")),
        "pod_type": pod.get("podType"),
        "gpu_util_pct": util,
        "memory_util_pct": round(sum(memory) / len(memory), 1) if memory else None,
        "idle": (util < idle_util_pct) if status == "RUNNING" and util is not None else None,
    }


def pod_metrics(pods: list[dict[str, Any]]) -> dict[str, Any]:
    running = [p for p in pods if p["status"] == "RUNNING"]
    idle = [p for p in running if p["idle"]]
    reporting = [p for p in running if p["gpu_util_pct"] is not None and p["gpu_count"]]
    metrics: dict[str, Any] = {
        "pods_total": len(pods),
        "pods_running": len(running),
        "gpus_running": sum(p["gpu_count"] for p in running),
        "cost_per_hr_total": round(sum(p["cost_per_hr"] for p in running), 4),
        "pods_idle": len(idle),
        "gpus_idle": sum(p["gpu_count"] for p in idle),
        "cost_per_hr_idle": round(sum(p["cost_per_hr"] for p in idle), 4),
    }
    weight = sum(p["gpu_count"] for p in reporting)
    if weight:
        metrics["gpu_util_avg_pct"] = round(sum(p["gpu_util_pct"] * p["gpu_count"] for p in reporting) / weight, 1)
    return metrics


def endpoint_metrics(endpoint_id: str, health: dict[str, Any], queue_threshold: int) -> dict[str, Any]:
    prefix = f"endpoint.{endpoint_id}"
    workers = health.get("workers") or {}
    jobs = health.get("jobs") or {}
    metrics: dict[str, Any] = {f"{prefix}.up": 1}
    for name in WORKER_FIELDS:
        metrics[f"{prefix}.workers_{name}"] = workers.get(name, 0)
    for api_name, name in JOB_FIELDS.items():
        metrics[f"{prefix}.jobs_{name}"] = jobs.get(api_name, 0)
    in_queue = jobs.get("inQueue", 0)
    if isinstance(in_queue, int | float):
        metrics[f"{prefix}.queue_used_pct"] = round(100.0 * in_queue / queue_threshold, 2)
    return metrics


# Metrics kept as history by the store (the cost view integrates spend from cost_per_hr_total).
TRACKED_METRICS = ("cost_per_hr_total", "cost_per_hr_idle", "pods_running", "gpus_running", "gpus_idle",
                   "gpu_util_avg_pct", "endpoint.*.jobs_in_queue", "endpoint.*.workers_running",
                   "endpoint.*.workers_unhealthy")

CATALOG = Catalog([
    MetricSpec("pods_total", "Pods of the account", prom="pods"),
    MetricSpec("pods_running", "Pods running"),
    MetricSpec("gpus_running", "GPUs of the running pods"),
    MetricSpec("cost_per_hr_total", "US dollars per hour of the running pods", prom="cost_usd_per_hour"),
    MetricSpec("pods_idle", "Running pods whose GPUs are idle"),
    MetricSpec("gpus_idle", "GPUs of the idle pods"),
    MetricSpec("cost_per_hr_idle", "US dollars per hour of the idle pods", prom="idle_cost_usd_per_hour"),
    MetricSpec("gpu_util_avg_pct", "GPU utilisation of the running pods (GPU-weighted)", unit="ratio", scale=0.01,
               prom="gpu_utilization_ratio"),
    MetricSpec("endpoints_watched", "Serverless endpoints watched"),
    MetricSpec("endpoint.<endpoint>.up", "1 when the endpoint's health could be read"),
    MetricSpec("endpoint.<endpoint>.latency_ms", "Round trip of the endpoint's health call", unit="seconds",
               scale=0.001, prom="endpoint_latency_seconds"),
    *(MetricSpec(f"endpoint.<endpoint>.workers_{name}", f"Workers {name}") for name in WORKER_FIELDS),
    *(MetricSpec(f"endpoint.<endpoint>.jobs_{name}", f"Jobs {name.replace('_', ' ')}") for name in JOB_FIELDS.values()),
    MetricSpec("endpoint.<endpoint>.queue_used_pct", "Jobs in queue of queue_threshold", unit="ratio", scale=0.01,
               prom="endpoint_queue_used_ratio"),
])

DISPLAY_NAME = "RunPod"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "endpoint.*.workers_unhealthy > 0",
    "endpoint.*.queue_used_pct > 100",
    "endpoint.*.up < 1",
    "latency_ms > 3000",
)
def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    """Rule messages naming the serverless endpoint (endpoint ids hold no dots)."""
    parts = metric.split(".")
    if parts[0] != "endpoint" or len(parts) != 3:
        return None
    endpoint, what = parts[1], parts[2]
    if what == "up":
        return f"endpoint {endpoint}: health unreadable" if not value else None
    if what == "queue_used_pct":
        queued = result.metrics.get(f"endpoint.{endpoint}.jobs_in_queue")
        jobs = f" ({breach.number(queued)} jobs)" if queued is not None else ""
        return f"endpoint {endpoint}: queue at {breach.number(value)}% of its threshold{jobs}"
    if what.startswith("workers_"):
        return f"endpoint {endpoint}: {breach.number(value)} {what[8:]} worker(s)"
    if what.startswith("jobs_"):
        return f"endpoint {endpoint}: {breach.number(value)} jobs {what[5:].replace('_', ' ')}"
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "runpod", "url": DEFAULT_API_URL, "api_key": "k"}


def warm() -> None:
    """Import the client library now: the registry calls this before the first probe of the kind, so the import
    stays out of that probe's timeout (and out of validating a config)."""
    _sdk()
    _errors()

PROBE = RunpodProbe
