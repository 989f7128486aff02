"""Kubernetes deployment scaling and rollout restart (official `kubernetes` client, AppsV1Api).

Deny by default: a deployment without `actions.scale` bounds in config cannot be scaled, and the
replicas must lie within them. Dry-run: the deployment as it is, the API server's own answer to the
change with `dryRun=All` (admission and validation run, nothing is stored), current -> new replicas
and the hourly cost delta from the pod template's requests x the configured unit prices.
Execution replaces the scale subresource carrying the resourceVersion just read; a 409 (someone
changed the deployment in between) is answered by reading again and retrying, at most
`actions.conflict_retries` times, then it fails saying so. Every conflict is counted in `after`.

Restart does what `kubectl rollout restart` does: a patch setting the pod template annotation
`kubectl.kubernetes.io/restartedAt` to the current time, so the deployment rolls every pod under its
own strategy. It is allowed for the deployments that have `actions.scale` bounds, like scaling, and
its dry-run is the API server's answer to that very patch with `dryRun=All`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from hulk_ops.actions.executors.base import ActionFailed, ActionRefused, Executor
from hulk_ops.actions.model import Preview, RestartDeployment, ScaleDeployment
from hulk_ops.core.action_config import PriceSettings, ScaleBounds
from hulk_ops.core.model import JSON
from hulk_ops.probes.base import describe_error
from hulk_ops.probes.kubernetes import api_error_text, build_api_client

T = TypeVar("T")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
GIB = Decimal(1024**3)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class KubernetesScale(Executor[ScaleDeployment]):
    actions = ("scale",)

    async def preview(self, request: ScaleDeployment) -> Preview:
        return await asyncio.to_thread(self._call, self._preview, request)

    async def _execute(self, request: ScaleDeployment, preview: Preview) -> dict[str, JSON]:
        return await asyncio.to_thread(self._call, self._scale, request)

    # -- sync parts (the client is synchronous) ---------------------------------------------
    def _call(self, fn: Any, request: ScaleDeployment | RestartDeployment) -> Any:
        where = f"{request.namespace}/{request.deployment}"
        try:
            api = build_api_client(self.target)  # type: ignore[arg-type]
        except Exception as exc:
            raise ActionFailed(self.redact(f"cannot configure the Kubernetes client for {self.target.name}: "
                                           f"{exc}")) from None
        try:
            return fn(client.AppsV1Api(api), request)
        except ApiException as exc:
            if exc.status == 404:
                raise ActionRefused(f"deployment {where} not found on {self.target.name}") from None
            if exc.status == 0:
                raise ActionFailed(self.redact(describe_error(exc, str(self.target.url), self._timeout))) from None
            raise ActionFailed(f"{self.target.name}: {api_error_text(exc)}") from None
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            raise ActionFailed(self.redact(describe_error(exc, str(self.target.url), self._timeout))) from None
        finally:
            api.close()

    @property
    def _timeout(self) -> float:
        return min(self.target.timeout_s, self.settings.timeout_s)

    def _bounded(self, apps: client.AppsV1Api, request: ScaleDeployment | RestartDeployment, bounds_name: str,
                 doing: str) -> tuple[str, ScaleBounds, Any]:
        """(namespace/name, its actions.scale bounds, the deployment read now); refused when it has no bounds."""
        where = f"{request.namespace}/{request.deployment}"
        bounds = self.settings.bounds(self.target.name, request.namespace, request.deployment)
        if bounds is None:
            raise ActionRefused(f"{where} on {self.target.name} has no {bounds_name} in config (actions.scale): "
                                f"{doing} it is not allowed")
        return where, bounds, apps.read_namespaced_deployment(request.deployment, request.namespace,
                                                              _request_timeout=self._timeout)

    def _preview(self, apps: client.AppsV1Api, request: ScaleDeployment) -> Preview:
        where, bounds, deployment = self._bounded(apps, request, "replica bounds", "scaling")
        spec = _given(deployment.spec, "spec")
        containers = _given(spec.template.spec, "pod spec").containers
        current = int(spec.replicas or 0)
        per_pod = pod_hourly_cost(containers, self.settings.prices)
        delta = round((request.replicas - current) * per_pod, 6)
        status = _given(deployment.status, "status")
        ready = int(status.ready_replicas or 0)
        before = {"replicas": current, "ready": ready,
                  "available": int(status.available_replicas or 0),
                  "resource_version": _given(deployment.metadata, "metadata").resource_version,
                  "pod_requests": pod_requests(containers),
                  "pod_cost_usd_per_hour": round(per_pod, 6), "bounds": [bounds.min, bounds.max]}
        refusal = None
        if not bounds.min <= request.replicas <= bounds.max:
            refusal = (f"{request.replicas} replicas is outside the bounds of {where} ({bounds.min}..{bounds.max}, "
                       "actions.scale in config)")
        expected: dict[str, Any] = {"replicas": request.replicas}
        if refusal is None:
            answer = apps.patch_namespaced_deployment_scale(
                request.deployment, request.namespace, {"spec": {"replicas": request.replicas}}, dry_run="All",
                _request_timeout=self._timeout)
            expected["server_dry_run"] = {"replicas": int(_given(answer.spec, "spec").replicas or 0), "dryRun": "All"}
        return Preview(
            summary=f"scale {where} on {self.target.name} from {current} to {request.replicas} replicas "
                    f"({delta:+.4f} USD/h)",
            object_name=request.deployment, before=before, expected=expected, cost_usd_per_hour_delta=delta,
            blast_radius=_radius(where, current, request.replicas, ready), refusal=refusal,
        )

    def _scale(self, apps: client.AppsV1Api, request: ScaleDeployment) -> dict[str, Any]:
        where = f"{request.namespace}/{request.deployment}"
        conflicts = 0
        for _attempt in range(self.settings.conflict_retries + 1):
            scale = apps.read_namespaced_deployment_scale(request.deployment, request.namespace,
                                                          _request_timeout=self._timeout)
            previous = int(_given(scale.spec, "spec").replicas or 0)
            # a merge patch carrying the resourceVersion read above: the API server refuses it with 409 when the
            # scale changed in between (optimistic concurrency, with RBAC `patch` only — no `update`)
            body = {"metadata": {"resourceVersion": _given(scale.metadata, "metadata").resource_version},
                    "spec": {"replicas": request.replicas}}
            self._before_write(request)
            try:
                written = apps.patch_namespaced_deployment_scale(request.deployment, request.namespace, body,
                                                                 _request_timeout=self._timeout)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                conflicts += 1  # stale resourceVersion: read the deployment again and retry
                continue
            return {"replicas": int(_given(written.spec, "spec").replicas or 0), "previous_replicas": previous,
                    "resource_version": _given(written.metadata, "metadata").resource_version,
                    "conflicts_retried": conflicts}
        raise ActionFailed(f"{where} kept changing: {conflicts} conflicting writes (409, stale resourceVersion) "
                           f"in a row; nothing was applied. Look at who else scales it, then retry.")

    def _before_write(self, request: ScaleDeployment) -> None:
        """Between reading the scale and writing it (a seam for tests that stage a concurrent writer)."""


class KubernetesRestart(KubernetesScale):
    actions = ("restart",)

    async def preview(self, request: RestartDeployment) -> Preview:  # type: ignore[override]
        return await asyncio.to_thread(self._call, self._restart_preview, request)

    async def _execute(self, request: RestartDeployment, preview: Preview) -> dict[str, Any]:  # type: ignore[override]
        return await asyncio.to_thread(self._call, self._restart, request)

    def _restart_preview(self, apps: client.AppsV1Api, request: RestartDeployment) -> Preview:
        where, _bounds, deployment = self._bounded(apps, request, "bounds", "restarting")
        replicas = int(deployment.spec.replicas or 0)
        status = deployment.status or client.V1DeploymentStatus()
        meta = deployment.metadata or client.V1ObjectMeta()
        annotations = (deployment.spec.template.metadata.annotations if deployment.spec.template.metadata else None)
        before = {"replicas": replicas, "ready": int(status.ready_replicas or 0),
                  "available": int(status.available_replicas or 0),
                  "unavailable": int(status.unavailable_replicas or 0),
                  "generation": int(meta.generation or 0),
                  "restarted_at": (annotations or {}).get(RESTARTED_AT),
                  "resource_version": meta.resource_version}
        answer = apps.patch_namespaced_deployment(request.deployment, request.namespace, restart_patch(),
                                                  dry_run="All", _request_timeout=self._timeout)
        answered = (answer.spec.template.metadata.annotations or {}) if answer.spec.template.metadata else {}
        answer_meta = answer.metadata or client.V1ObjectMeta()
        expected = {"restarted_at": answered.get(RESTARTED_AT),
                    "server_dry_run": {"generation": int(answer_meta.generation or 0), "dryRun": "All"}}
        strategy = deployment.spec.strategy.type if deployment.spec.strategy else None
        radius = [f"every pod of {where} ({replicas}) is replaced by a new one"
                  + (f" ({strategy} strategy)" if strategy else "")]
        if replicas == 0:
            radius = [f"{where} has 0 replicas: only the template annotation changes, no pod is replaced"]
        elif strategy == "Recreate" or replicas == 1:
            radius.append(f"{where} serves nothing between the old pod(s) stopping and the new ones being ready")
        return Preview(summary=f"rolling restart of {where} on {self.target.name} ({replicas} pod(s))",
                       object_name=request.deployment, before=before, expected=expected,
                       cost_usd_per_hour_delta=0.0, blast_radius=radius)

    def _restart(self, apps: client.AppsV1Api, request: RestartDeployment) -> dict[str, Any]:
        patch = restart_patch()
        written = apps.patch_namespaced_deployment(request.deployment, request.namespace, patch,
                                                   _request_timeout=self._timeout)
        written_meta = written.metadata or client.V1ObjectMeta()
        return {"restarted_at": patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
                "generation": int(written_meta.generation or 0),
                "resource_version": written_meta.resource_version}


def restart_patch(now: datetime | None = None) -> dict[str, Any]:
    """The patch `kubectl rollout restart` sends (RFC 3339 time of the restart on the pod template)."""
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}


def pod_requests(containers: list[Any]) -> dict[str, float]:
    cpu = mem = gpu = Decimal(0)
    for container in containers or []:
        requests = (container.resources.requests if container.resources else None) or {}
        cpu += parse_quantity(requests.get("cpu", "0"))
        mem += parse_quantity(requests.get("memory", "0"))
        gpu += sum((parse_quantity(requests.get(r, "0")) for r in GPU_RESOURCES), Decimal(0))
    return {"cpu": float(cpu), "memory_gib": round(float(mem / GIB), 4), "gpu": float(gpu)}


def pod_hourly_cost(containers: list[Any], prices: PriceSettings) -> float:
    r = pod_requests(containers)
    return r["cpu"] * prices.cpu_hour + r["memory_gib"] * prices.gib_hour + r["gpu"] * prices.gpu_hour


def _given(value: T | None, what: str) -> T:
    """A field the API server always sends (the client's models type every field optional)."""
    if value is None:
        raise ActionFailed(f"the Kubernetes API answered without the object's {what}")
    return value


def _radius(where: str, current: int, new: int, ready: int) -> list[str]:
    if new < current:
        lines = [f"{current - new} pod(s) of {where} will be terminated"]
        if new == 0:
            lines.append(f"{where} will have no pods at all: it stops serving")
        elif new < ready:
            lines.append(f"ready pods drop from {ready} to {new}")
        return lines
    if new > current:
        return [f"{new - current} new pod(s) of {where} will be scheduled (each requests the template's resources)"]
    return [f"no change: {where} already has {current} replicas"]
