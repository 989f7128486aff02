"""Kubernetes probe (official `kubernetes` client, sync, run in a worker thread).

Credentials: ``url`` + ``token``, or ``kubeconfig`` (+ ``context``), or ``in_cluster: true``
(``url`` then overrides the server). Latency is the ``/version`` call; version is its gitVersion.
Lists are paged (``page_size``) and every call gets what is left of ``timeout_s``, so the worker
thread ends by the deadline even when the server stalls. ``namespaces`` limits pods, deployments
and events (and so the per-node requests) to those namespaces; nodes are always cluster-wide.

Metrics: nodes, nodes_ready, nodes_not_ready; per node node.<n>.ready, .cpu_allocatable (cores),
.memory_allocatable_gib, .gpu_capacity, .gpu_allocatable, .cpu_requests, .memory_requests_gib,
.gpu_requests, .pods; cluster totals cpu_allocatable, memory_allocatable_gib, gpu_capacity,
gpu_allocatable, cpu_requests, memory_requests_gib, gpu_requests and cpu_requests_pct /
memory_requests_pct / gpu_requests_pct (when something is allocatable); deployments,
deployments_short, deploy.<ns>.<name>.desired / .available; pods, pods_running, pods_pending,
pods_pending_stuck (Pending longer than ``pending_grace_s``), pods_crashloop, pods_failed,
pod_restarts; events_warning (Warning events within ``events_window_s``); per namespace
ns.<ns>.cpu_requests (cores), .memory_requests_gib, .gpu_requests, .pods (cost view).
Details: nodes (capacity rows), deployments_short, pods_problem, events (time, type, reason,
object, namespace, message, count, component; newest first, at most ``max_events``), notes.
Down: unreachable, timeout, 401 ("authentication failed (401 Unauthorized)"), 403, other API errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import urllib3.exceptions
from pydantic import Field, SecretStr, field_validator, model_validator

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.discovery_config import namespace_names
from hulk_ops.core.kind import CapacityItem, limit_of
from hulk_ops.core.model import ProbeResult
from hulk_ops.probes import k8s_metrics as km
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure, describe_error
from hulk_ops.probes.lazy import lazy_module

if TYPE_CHECKING:
    import kubernetes
else:
    kubernetes = lazy_module("kubernetes")


def warm() -> None:
    """Load the client's API classes and models this probe uses (code loading only, no I/O).

    The client loads its API classes (CoreV1Api is ~60k lines) and ~900 model modules lazily; the first list
    of pods alone pulls in ~200 of them: seconds on a busy host. The registry calls this when it builds the
    first probe of this kind, keeping that cost out of the first probe's timeout, and out of everything that
    only validates a config (reports, the dashboard)."""
    for name in ("VersionApi", "CoreV1Api", "AppsV1Api", "VersionInfo", "V1NodeList", "V1PodList",
                 "V1DeploymentList", "CoreV1EventList", "V1Status"):
        getattr(kubernetes.client, name)


class Settings(TargetSettings):
    kind: Literal["kubernetes"]
    # optional here (kubeconfig or in-cluster settings name the server); every use checks for None
    url: str | None = Field(None, min_length=1, description="API server URL; with kubeconfig/in_cluster: override")  # type: ignore[assignment]
    token: SecretStr | None = None
    kubeconfig: str | None = Field(None, min_length=1)
    context: str | None = Field(None, min_length=1)
    in_cluster: bool = False
    namespaces: list[str] = Field(default_factory=list, description="namespaces to watch (default: all)")
    verify_tls: bool = True
    ca_file: str | None = Field(None, min_length=1)
    events_window_s: float = Field(3600.0, gt=0, le=7 * 86_400)
    max_events: int = Field(50, ge=0, le=1000)
    pending_grace_s: float = Field(300.0, ge=0)
    page_size: int = Field(500, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://), e.g. https://10.0.0.1:6443")
        return value

    _namespaces = field_validator("namespaces")(namespace_names)

    @model_validator(mode="after")
    def _one_source(self) -> Settings:
        if self.in_cluster and self.kubeconfig:
            raise ValueError("kubeconfig: cannot be combined with in_cluster: true (pick one)")
        if not (self.url or self.kubeconfig or self.in_cluster):
            raise ValueError("url: field required (or set kubeconfig, or in_cluster: true)")
        if self.token is not None and (self.kubeconfig or self.in_cluster):
            raise ValueError("token: only with url (kubeconfig and in_cluster bring their own credentials)")
        if self.context and not self.kubeconfig:
            raise ValueError("context: needs kubeconfig")
        return self


class KubernetesProbe(Probe[Settings, "kubernetes.client.ApiClient"]):
    kind = "kubernetes"
    transient = (ConnectionResetError, BrokenPipeError, urllib3.exceptions.ProtocolError)

    _server_url: str | None = None  # the API server in use (known once kubeconfig / in-cluster config is read)

    async def _connect(self) -> kubernetes.client.ApiClient:
        api = await asyncio.to_thread(build_api_client, self.settings)
        self._server_url = str(api.configuration.host)
        return api

    async def _close(self, api: kubernetes.client.ApiClient) -> None:
        await asyncio.to_thread(api.close)

    async def _measure(self, api: kubernetes.client.ApiClient) -> Measurement:
        deadline = time.monotonic() + self.settings.timeout_s
        try:
            return await asyncio.to_thread(self._measure_sync, api, deadline)
        except kubernetes.client.ApiException as exc:
            if exc.status == 0:  # the client wraps transport errors (TLS) as status 0: not an API answer
                raise
            raise ProbeFailure(api_error_text(exc)) from exc

    def _measure_sync(self, api: kubernetes.client.ApiClient, deadline: float) -> Measurement:
        s = self.settings
        calls = _Calls(api, deadline, s.page_size)
        started = time.perf_counter()
        version = kubernetes.client.VersionApi(api).get_code(_request_timeout=calls.budget())
        latency_ms = (time.perf_counter() - started) * 1000
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        notes: list[str] = []
        nodes = calls.optional(core.list_node, notes, "nodes")
        pods = calls.per_namespace(core.list_pod_for_all_namespaces, core.list_namespaced_pod, s.namespaces)
        deployments = calls.per_namespace(apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment,
                                          s.namespaces)
        events = calls.per_namespace(core.list_event_for_all_namespaces, core.list_namespaced_event, s.namespaces,
                                     field_selector="type=Warning", optional=notes)
        now = datetime.now(UTC)
        metrics: dict[str, Any] = {}
        details: dict[str, Any] = {}
        if nodes is not None:
            node_values, details["nodes"] = km.node_metrics(nodes, pods)
            metrics.update(node_values)
        pod_values, details["pods_problem"] = km.pod_metrics(pods, now, s.pending_grace_s)
        deploy_values, details["deployments_short"] = km.deployment_metrics(deployments)
        metrics.update(pod_values | deploy_values | km.namespace_requests(pods))
        if events is not None:
            metrics["events_warning"], details["events"] = km.recent_warnings(events, now, s.events_window_s,
                                                                              s.max_events)
        if notes:
            details["notes"] = notes
        return Measurement(latency_ms=latency_ms, version=version.git_version, metrics=metrics, details=details)

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, kubernetes.config.ConfigException):
            where = "in-cluster config" if self.settings.in_cluster else f"kubeconfig {self.settings.kubeconfig}"
            return f"{where}: {exc}"
        chain = _chain(exc)
        for err in chain:
            if isinstance(err, urllib3.exceptions.SSLError | ssl.SSLError):
                return f"TLS error talking to {self._server()}: {err} (check ca_file / verify_tls)"
            if isinstance(err, kubernetes.client.ApiException) and err.status == 0 and \
                    str(err.reason).startswith("SSLError"):
                detail = str(err.reason).split("\n", 1)[-1]
                return f"TLS error talking to {self._server()}: {detail} (check ca_file / verify_tls)"
        # urllib3's NewConnectionError is a ConnectTimeoutError: name the OS error under it first
        if not any(isinstance(e, OSError) for e in chain) and any(
                isinstance(e, urllib3.exceptions.TimeoutError) for e in chain):
            return f"timed out after {self.settings.timeout_s:.1f} s"
        if any(isinstance(e, OSError) for e in chain) or not self.settings.url:
            # the network message names the server actually used (from kubeconfig or in-cluster config)
            return describe_error(exc, self._server(), self.settings.timeout_s)
        return None  # the generic message, and the base logs it as unexpected

    def _server(self) -> str:
        if self._server_url:
            return self._server_url
        return self.settings.url or ("kubernetes.default.svc:443" if self.settings.in_cluster else "kubeconfig")


class _Calls:
    """Paged list calls sharing one deadline: each request gets the time that is left."""

    def __init__(self, api: kubernetes.client.ApiClient, deadline: float, page_size: int) -> None:
        self.api, self.deadline, self.page_size = api, deadline, page_size

    def budget(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0.01:
            raise TimeoutError("deadline reached")
        return left

    def list_all(self, fn: Any, **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        cont: str | None = None
        while True:
            page = fn(limit=self.page_size, _continue=cont, _request_timeout=self.budget(), **kwargs)
            items.extend(page.items)
            cont = getattr(page.metadata, "var_continue", None) if page.metadata else None
            if not cont:
                return items

    def optional(self, fn: Any, notes: list[str], what: str, **kwargs: Any) -> list[Any] | None:
        """A list the token may not be allowed to read (403): None and a note instead of down."""
        try:
            return self.list_all(fn, **kwargs)
        except kubernetes.client.ApiException as exc:
            if exc.status != 403:
                raise
            notes.append(f"cannot list {what}: {api_error_text(exc)}; their metrics are left out")
            return None

    def per_namespace(self, all_fn: Any, ns_fn: Any, namespaces: list[str], optional: list[str] | None = None,
                      **kwargs: Any) -> Any:
        if not namespaces:
            if optional is not None:
                return self.optional(all_fn, optional, "events", **kwargs)
            return self.list_all(all_fn, **kwargs)
        out: list[Any] = []
        for ns in namespaces:
            if optional is not None:
                found = self.optional(ns_fn, optional, f"events in {ns}", namespace=ns, **kwargs)
                out.extend(found or [])
            else:
                out.extend(self.list_all(ns_fn, namespace=ns, **kwargs))
        return out


def build_api_client(s: Settings) -> kubernetes.client.ApiClient:
    """One ApiClient per target (kubeconfig and in-cluster loading read files: run in a thread)."""
    cfg = kubernetes.client.Configuration()
    if s.in_cluster:
        kubernetes.config.load_incluster_config(client_configuration=cfg)
    elif s.kubeconfig:
        kubernetes.config.load_kube_config(config_file=os.path.expanduser(s.kubeconfig), context=s.context,
                                client_configuration=cfg, persist_config=False)
    if s.url:
        cfg.host = s.url.rstrip("/")
    if s.token is not None:
        cfg.api_key = {"authorization": s.token.get_secret_value()}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    if not s.verify_tls:
        cfg.verify_ssl = False
    if s.ca_file:
        cfg.ssl_ca_cert = os.path.expanduser(s.ca_file)
    cfg.retries = False  # retries are the probe's business, inside its timeout
    cfg.connection_pool_maxsize = 2
    return kubernetes.client.ApiClient(cfg)


def api_error_text(exc: kubernetes.client.ApiException) -> str:
    message = ""
    try:
        message = str(json.loads(exc.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = (exc.body or "")[:200] if isinstance(exc.body, str) else ""
    if exc.status == 401:
        return "authentication failed (401 Unauthorized)"
    if exc.status == 403:
        return f"permission denied (403 Forbidden){': ' + message if message else ''}"
    return f"API error {exc.status} {exc.reason or ''}".rstrip() + (f": {message}" if message else "")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        reason = getattr(current, "reason", None)
        current = current.__cause__ or current.__context__ or (reason if isinstance(reason, BaseException) else None)
    return seen


# Metrics kept as history by the store (capacity trends, cost per namespace).
TRACKED_METRICS = ("nodes_ready", "nodes_not_ready", "deployments_short", "pods_crashloop", "pods_pending",
                   "events_warning", "cpu_requests", "memory_requests_gib", "gpu_requests", "gpu_capacity",
                   "cpu_requests_pct", "memory_requests_pct", "gpu_requests_pct", "node.*", "ns.*")

# (resource, label, unit, allocatable metric) of the requests the capacity page sets against allocatable
RESOURCES = (("cpu", "CPU requests", "cores", "cpu_allocatable"),
             ("memory", "memory requests", "GiB", "memory_allocatable_gib"),
             ("gpu", "GPU requests", "GPUs", "gpu_allocatable"))


def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    nodes = sorted({n.split(".")[1] for n in m if n.startswith("node.") and n.endswith(".cpu_allocatable")})
    for scope, prefix in [("cluster", ""), *((f"node {n}", f"node.{n}.") for n in nodes)]:
        for short, label, unit, alloc in RESOURCES:
            used_name = f"{prefix}{'memory_requests_gib' if short == 'memory' else short + '_requests'}"
            limit = limit_of(m, f"{prefix}{alloc}")
            if used_name in m and (limit or short != "gpu"):
                yield CapacityItem(f"{scope} {label}", m[used_name], limit, unit, used_name)


_GIB = float(km.GIB)
CATALOG = Catalog([
    MetricSpec("nodes", "Nodes of the cluster"),
    MetricSpec("nodes_ready", "Nodes Ready"),
    MetricSpec("nodes_not_ready", "Nodes not Ready"),
    MetricSpec("node.<node>.ready", "1 when the node is Ready"),
    MetricSpec("node.<node>.cpu_allocatable", "Allocatable CPU of the node", prom="node_cpu_allocatable_cores"),
    MetricSpec("node.<node>.memory_allocatable_gib", "Allocatable memory of the node", unit="bytes", scale=_GIB,
               prom="node_memory_allocatable_bytes"),
    MetricSpec("node.<node>.gpu_capacity", "GPUs of the node"),
    MetricSpec("node.<node>.gpu_allocatable", "Allocatable GPUs of the node"),
    MetricSpec("node.<node>.cpu_requests", "CPU requested by the node's pods", prom="node_cpu_requests_cores"),
    MetricSpec("node.<node>.memory_requests_gib", "Memory requested by the node's pods", unit="bytes", scale=_GIB,
               prom="node_memory_requests_bytes"),
    MetricSpec("node.<node>.gpu_requests", "GPUs requested by the node's pods"),
    MetricSpec("node.<node>.pods", "Pods on the node"),
    MetricSpec("cpu_allocatable", "Allocatable CPU of the cluster", prom="cpu_allocatable_cores"),
    MetricSpec("memory_allocatable_gib", "Allocatable memory of the cluster", unit="bytes", scale=_GIB,
               prom="memory_allocatable_bytes"),
    MetricSpec("gpu_capacity", "GPUs of the cluster"),
    MetricSpec("gpu_allocatable", "Allocatable GPUs of the cluster"),
    MetricSpec("cpu_requests", "CPU requested by pods", prom="cpu_requests_cores"),
    MetricSpec("memory_requests_gib", "Memory requested by pods", unit="bytes", scale=_GIB,
               prom="memory_requests_bytes"),
    MetricSpec("gpu_requests", "GPUs requested by pods"),
    MetricSpec("cpu_requests_pct", "CPU requested of allocatable", unit="ratio", scale=0.01,
               prom="cpu_requests_ratio"),
    MetricSpec("memory_requests_pct", "Memory requested of allocatable", unit="ratio", scale=0.01,
               prom="memory_requests_ratio"),
    MetricSpec("gpu_requests_pct", "GPUs requested of allocatable", unit="ratio", scale=0.01,
               prom="gpu_requests_ratio"),
    MetricSpec("deployments", "Deployments"),
    MetricSpec("deployments_short", "Deployments with fewer available replicas than desired"),
    MetricSpec("deploy.<namespace>.<deployment>.desired", "Desired replicas of the deployment"),
    MetricSpec("deploy.<namespace>.<deployment>.available", "Available replicas of the deployment"),
    MetricSpec("pods", "Pods"),
    MetricSpec("pods_running", "Pods Running"),
    MetricSpec("pods_pending", "Pods Pending"),
    MetricSpec("pods_pending_stuck", "Pods Pending longer than pending_grace_s"),
    MetricSpec("pods_crashloop", "Pods in CrashLoopBackOff"),
    MetricSpec("pods_failed", "Pods Failed"),
    MetricSpec("pod_restarts", "Container restarts of the pods listed"),
    MetricSpec("events_warning", "Warning events within events_window_s"),
    MetricSpec("ns.<namespace>.cpu_requests", "CPU requested in the namespace", prom="namespace_cpu_requests_cores"),
    MetricSpec("ns.<namespace>.memory_requests_gib", "Memory requested in the namespace", unit="bytes", scale=_GIB,
               prom="namespace_memory_requests_bytes"),
    MetricSpec("ns.<namespace>.gpu_requests", "GPUs requested in the namespace", prom="namespace_gpu_requests"),
    MetricSpec("ns.<namespace>.pods", "Pods in the namespace", prom="namespace_pods"),
])

DISPLAY_NAME = "Kubernetes"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "nodes_not_ready > 0",
    "deployments_short > 0",
    "pods_crashloop > 0",
    "pods_pending_stuck > 0",
    "latency_ms > 1000",
)


def describe_breach(metric: str, value: float, result: ProbeResult) -> str | list[str] | None:
    """Rule messages naming the node, deployment or pod (the aggregates from the result's details)."""
    details = result.details or {}
    if metric == "deployments_short":
        return [f"deployment {d['namespace']}/{d['name']}: {breach.number(d['available'])} of "
                f"{breach.number(d['desired'])} available" for d in details.get("deployments_short") or []] or None
    if metric == "nodes_not_ready":
        return [f"node {n['name']} not ready" for n in details.get("nodes") or [] if not n.get("ready")] or None
    if metric in ("pods_crashloop", "pods_pending_stuck"):
        wanted = "CrashLoopBackOff" if metric == "pods_crashloop" else "Pending"
        return [f"pod {p['namespace']}/{p['name']}: {p['reason']}"
                + (f" ({breach.number(p['restarts'])} restarts)" if p.get("restarts") else "")
                for p in details.get("pods_problem") or [] if str(p.get("reason", "")).startswith(wanted)] or None
    node = breach.between(metric, "node.", ".ready")
    if node is not None:
        return None if value else f"node {node} not ready"
    deployment = breach.between(metric, "deploy.", ".available")
    if deployment is not None and "." in deployment:
        namespace, name = deployment.split(".", 1)
        desired = result.metrics.get(f"deploy.{deployment}.desired")
        of = f" of {breach.number(desired)}" if desired is not None else ""
        return f"deployment {namespace}/{name}: {breach.number(value)}{of} available"
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "kubernetes", "url": "https://127.0.0.1:6443", "token": "t"}

PROBE = KubernetesProbe
