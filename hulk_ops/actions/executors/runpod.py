"""RunPod GPU pods and serverless jobs (the official `runpod` SDK, through `hulk_ops/probes/runpod_sdk.py` so each
call uses its own target's key and API base).

- launch_gpu: dry-run reads the GPU type (`gpuTypes` with `lowestPrice` for the count): unknown type
  or no on-demand price (out of stock) -> refused; price x count x max runtime is checked against the
  budget cap (`actions.runpod.budget_usd`). The max runtime is the budget's assumption: RunPod does
  not stop a pod by itself, so stop it in time (`hulk-ops action stop-pod`). Execution sends the
  SDK's own `podFindAndDeployOnDemand` mutation.
- run_job: dry-run reads the endpoint's health; the cost bound is max runtime x `prices.gpu_hour`
  (one worker), checked against the same cap. Execution is `Endpoint.run(input)`.
- endpoint_workers: only endpoints with `actions.endpoint_workers` bounds (deny by default); dry-run
  reads the endpoint (`myself { endpoints }`), refuses limits outside the bounds and prices the change
  at full scale: (new - old workersMax) x the worker price (`usd_per_worker_hour`, else
  `prices.gpu_hour`). Execution is RunPod's `saveEndpoint` with the endpoint's `id`, which modifies it;
  the required name, gpuIds and templateId (and the scaler settings) are sent back as they were read.
- stop_pod / terminate_pod: dry-run reads the pod (not found -> refused; stopping a stopped pod ->
  refused) and shows the cost per hour that ends; execution sends `podStop` / `podTerminate`.
"""

from __future__ import annotations

from typing import Any

import orjson
import requests
from runpod import error as runpod_error
from runpod.api.mutations.pods import (
    generate_pod_deployment_mutation,
    generate_pod_stop_mutation,
    generate_pod_terminate_mutation,
)
from runpod.api.queries.gpus import QUERY_GPU_TYPES
from runpod.api.queries.pods import generate_pod_query
from runpod.endpoint.runner import Endpoint

from hulk_ops.actions.executors.base import ActionFailed, ActionRefused, Executor
from hulk_ops.actions.model import (
    ActionRequest,
    EndpointWorkers,
    LaunchGpuPod,
    Preview,
    RunServerlessJob,
    StopPod,
    TerminatePod,
)
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import JSON
from hulk_ops.probes import runpod_sdk
from hulk_ops.probes.base import describe_error

GPU_QUERY = """query hulkOpsGpu {{ gpuTypes(input: {{id: "{gpu}"}}) {{ id displayName memoryInGb securePrice
  communityPrice lowestPrice(input: {{gpuCount: {count}}}) {{ uninterruptablePrice stockStatus }} }} }}"""
RUNNING_QUERY = "query hulkOpsRunning { myself { pods { id desiredStatus costPerHr } } }"
ENDPOINT_FIELDS = "id name gpuIds templateId idleTimeout scalerType scalerValue workersMin workersMax"
ENDPOINTS_QUERY = f"query hulkOpsEndpoints {{ myself {{ endpoints {{ {ENDPOINT_FIELDS} }} }} }}"


def gpu_types_answer(target: TargetSettings, query: str) -> dict[str, Any]:
    """RunPod's answer to a GPU-type query, for the launch form's choices; empty when the API cannot be read (the
    form still takes a typed GPU type and the dry-run reports the API's own error)."""
    try:
        answer, _ms = runpod_sdk.graphql(query, target.api_key.get_secret_value(),  # type: ignore[attr-defined]
                                         str(target.url), min(target.timeout_s, 5.0))
    except Exception:
        return {}
    return answer if isinstance(answer, dict) else {}


class RunPodActions(Executor[ActionRequest]):
    actions = ("launch_gpu", "run_job", "endpoint_workers", "stop_pod", "terminate_pod")

    @property
    def _key(self) -> str:
        return self.target.api_key.get_secret_value()  # type: ignore[attr-defined]

    def _describe(self, exc: BaseException) -> str:
        return describe_error(exc, str(self.target.url), self.settings.timeout_s)

    async def _graphql(self, query: str) -> dict[str, Any]:
        try:
            answer, _ms = await runpod_sdk.in_thread(runpod_sdk.graphql, query, self._key, str(self.target.url),
                                                     self.settings.timeout_s)
        except runpod_error.AuthenticationError:
            raise ActionFailed(f"RunPod {self.target.name}: authentication failed (check api_key)") from None
        except runpod_error.QueryError as exc:
            message = str(exc).split("\n")[0]
            if "not found" in message.lower():
                raise ActionRefused(f"RunPod {self.target.name}: {message}") from None
            raise ActionFailed(f"RunPod {self.target.name} refused: {message}") from None
        except (requests.RequestException, OSError, TimeoutError) as exc:
            raise ActionFailed(self.redact(f"RunPod {self.target.name}: {self._describe(exc)}")) from None
        return answer.get("data") or {}

    async def preview(self, request: ActionRequest) -> Preview:
        if isinstance(request, LaunchGpuPod):
            return await self._preview_launch(request)
        if isinstance(request, RunServerlessJob):
            return await self._preview_job(request)
        if isinstance(request, EndpointWorkers):
            return await self._preview_workers(request)
        if isinstance(request, StopPod):  # TerminatePod is a StopPod
            return await self._preview_pod(request)
        raise ActionRefused(f"RunPod cannot {request.action}")

    async def _execute(self, request: ActionRequest, preview: Preview) -> dict[str, JSON]:
        if isinstance(request, LaunchGpuPod):
            return await self._launch(request)
        if isinstance(request, RunServerlessJob):
            return await self._run_job(request)
        if isinstance(request, EndpointWorkers):
            return await self._save_workers(request)
        if isinstance(request, TerminatePod):
            await self._graphql(generate_pod_terminate_mutation(request.pod_id))
            return {"pod_id": request.pod_id, "terminated": await self._pod(request.pod_id) is None}
        assert isinstance(request, StopPod)
        await self._graphql(generate_pod_stop_mutation(request.pod_id))
        pod = await self._pod(request.pod_id)
        return {"pod_id": request.pod_id, "desired_status": pod.get("desiredStatus") if pod else None}

    # -- GPU pod launch ---------------------------------------------------------------------
    async def _preview_launch(self, request: LaunchGpuPod) -> Preview:
        limits = self.settings.runpod
        gpu = await self._gpu(request)
        price = _price(gpu, request.cloud_type)
        name = gpu.get("displayName") or request.gpu_type
        if price is None:
            stock = (gpu.get("lowestPrice") or {}).get("stockStatus")
            raise ActionRefused(f"{request.count} x {name} is out of stock on RunPod ({request.cloud_type} cloud"
                                f"{f', stock {stock}' if stock else ''}): try another GPU type or fewer GPUs")
        per_hour = round(price * request.count, 6)
        total = round(per_hour * request.max_hours, 2)
        running = [p for p in (await self._graphql(RUNNING_QUERY)).get("myself", {}).get("pods") or []
                   if p.get("desiredStatus") == "RUNNING"]
        spend = round(sum(float(p.get("costPerHr") or 0) for p in running), 4)
        refusal = None
        if request.max_hours > limits.max_hours:
            refusal = f"max runtime {request.max_hours:g} h exceeds the limit of {limits.max_hours:g} h"
        elif request.count > limits.max_gpu_count:
            refusal = f"{request.count} GPUs exceed the limit of {limits.max_gpu_count} per launch"
        elif total > limits.budget_usd:
            refusal = (f"over budget: {price:.2f} USD/GPU/h x {request.count} x {request.max_hours:g} h = "
                       f"{total:.2f} USD > cap {limits.budget_usd:.2f} USD (actions.runpod.budget_usd)")
        return Preview(
            summary=f"launch {request.count} x {name} ({request.image}) for at most {request.max_hours:g} h: "
                    f"at most {total:.2f} USD ({price:.2f} USD/GPU/h)",
            object_name=request.target,
            before={"running_pods": len(running), "cost_usd_per_hour": spend},
            expected={"cost_usd_per_hour": round(spend + per_hour, 4), "gpu_price_usd_per_hour": price,
                      "budget_usd": limits.budget_usd},
            cost_usd_per_hour_delta=per_hour, cost_usd_max=total,
            blast_radius=[f"a new pod bills {per_hour:.2f} USD/h until it is stopped: RunPod does not stop it after "
                          f"{request.max_hours:g} h by itself"],
            refusal=refusal,
        )

    async def _gpu(self, request: LaunchGpuPod) -> dict[str, Any]:
        found = (await self._graphql(GPU_QUERY.format(gpu=request.gpu_type, count=request.count))).get("gpuTypes")
        if found:
            return found[0]
        known = [g.get("id") for g in (await self._graphql(QUERY_GPU_TYPES)).get("gpuTypes") or []]
        raise ActionRefused(f"unknown GPU type {request.gpu_type!r} on RunPod (known: {', '.join(map(str, known))})")

    async def _launch(self, request: LaunchGpuPod) -> dict[str, Any]:
        env = request.params(redact=False).get("env") or None
        mutation = generate_pod_deployment_mutation(
            name=request.name or f"hulk-ops-{request.gpu_type.split()[-1].lower()}", image_name=request.image,
            gpu_type_id=request.gpu_type, cloud_type=request.cloud_type, gpu_count=request.count, env=env)
        deployed = (await self._graphql(mutation)).get("podFindAndDeployOnDemand") or {}
        pod_id = deployed.get("id")
        if not pod_id:
            raise ActionFailed(f"RunPod {self.target.name} answered without a pod id: {deployed!r}"[:300])
        pod = await self._pod(pod_id) or {}
        return {"pod_id": pod_id, "desired_status": pod.get("desiredStatus"), "cost_per_hr": pod.get("costPerHr"),
                "gpu_count": pod.get("gpuCount"), "name": pod.get("name")}

    # -- stop / terminate -------------------------------------------------------------------
    async def _pod(self, pod_id: str) -> dict[str, Any] | None:
        try:
            return (await self._graphql(generate_pod_query(pod_id))).get("pod")
        except ActionRefused:
            return None

    async def _preview_pod(self, request: StopPod) -> Preview:
        pod = await self._pod(request.pod_id)
        if not pod:
            raise ActionRefused(f"pod {request.pod_id} not found on {self.target.name}")
        status = pod.get("desiredStatus")
        terminate = isinstance(request, TerminatePod)
        if not terminate and status != "RUNNING":
            raise ActionRefused(f"pod {request.pod_id} is {status}, not RUNNING: nothing to stop")
        cost = float(pod.get("costPerHr") or 0) if status == "RUNNING" else 0.0
        verb, after = ("terminate", "TERMINATED") if terminate else ("stop", "EXITED")
        gpus = f"{pod.get('gpuCount')} x {(pod.get('machine') or {}).get('gpuDisplayName') or 'GPU'}"
        radius = [f"pod {pod.get('name')} ({gpus}) stops running: whatever it runs is interrupted"]
        radius.append("its container disk and volume are deleted for good" if terminate
                      else "its container disk is wiped; the volume disk is kept (a stopped pod still bills storage)")
        return Preview(
            summary=f"{verb} pod {request.pod_id} ({pod.get('name')}, {gpus}, {status}): {-cost:+.2f} USD/h",
            object_name=request.pod_id,
            before={"desired_status": status, "cost_per_hr": cost, "gpu_count": pod.get("gpuCount"),
                    "name": pod.get("name"), "image": pod.get("imageName"), "uptime_s": pod.get("uptimeSeconds")},
            expected={"desired_status": after}, cost_usd_per_hour_delta=-cost, blast_radius=radius,
        )

    # -- serverless jobs --------------------------------------------------------------------
    def _endpoint(self, endpoint_id: str) -> Endpoint:
        client = runpod_sdk.serverless_client(self._key, self.target.endpoint_url)  # type: ignore[attr-defined]
        return runpod_sdk.watched_endpoints(client, [endpoint_id])[endpoint_id]

    async def _preview_job(self, request: RunServerlessJob) -> Preview:
        limits, price = self.settings.runpod, self.settings.prices.gpu_hour
        endpoint = self._endpoint(request.endpoint)
        try:
            health, _ms = await runpod_sdk.in_thread(runpod_sdk.endpoint_health, endpoint, self.settings.timeout_s)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise ActionRefused(f"serverless endpoint {request.endpoint} not found on {self.target.name}") from None
            raise ActionFailed(f"RunPod {self.target.name}: {exc}") from None
        except (requests.RequestException, OSError) as exc:
            raise ActionFailed(self.redact(f"RunPod {self.target.name}: {self._describe(exc)}")) from None
        finally:
            endpoint.rp_client.rp_session.close()
        total = round(request.max_hours * price, 2)
        refusal = None
        if total > limits.budget_usd:
            refusal = (f"over budget: {request.max_hours:g} h x {price:.2f} USD/GPU/h = {total:.2f} USD > cap "
                       f"{limits.budget_usd:.2f} USD (actions.runpod.budget_usd)")
        jobs, workers = health.get("jobs", {}), health.get("workers", {})
        return Preview(
            summary=f"run a job on endpoint {request.endpoint} for at most {request.max_hours:g} h "
                    f"(at most {total:.2f} USD at {price:.2f} USD/GPU/h, one worker)",
            object_name=request.target, before={"jobs": jobs, "workers": workers},
            expected={"jobs_in_queue": int(jobs.get("inQueue", 0)) + 1}, cost_usd_max=total,
            blast_radius=[f"joins a queue of {jobs.get('inQueue', 0)} job(s); {workers.get('idle', 0)} worker(s) idle"],
            refusal=refusal,
        )

    async def _run_job(self, request: RunServerlessJob) -> dict[str, Any]:
        endpoint = self._endpoint(request.endpoint)
        try:
            job = await runpod_sdk.in_thread(endpoint.run, request.params(redact=False)["input"])
            status = await runpod_sdk.in_thread(job.status)
        except (requests.RequestException, OSError) as exc:
            raise ActionFailed(self.redact(f"RunPod {self.target.name}: {exc}")) from None
        finally:
            endpoint.rp_client.rp_session.close()
        return {"job_id": job.job_id, "endpoint": request.endpoint, "status": status}


    # -- serverless endpoint worker limits -----------------------------------------------------
    async def _endpoint_config(self, endpoint_id: str) -> dict[str, Any]:
        endpoints = ((await self._graphql(ENDPOINTS_QUERY)).get("myself") or {}).get("endpoints") or []
        for endpoint in endpoints:
            if endpoint.get("id") == endpoint_id:
                return endpoint
        raise ActionRefused(f"serverless endpoint {endpoint_id} not found on {self.target.name}")

    async def _preview_workers(self, request: EndpointWorkers) -> Preview:
        bounds = self.settings.worker_bounds(self.target.name, request.endpoint)
        if bounds is None:
            raise ActionRefused(f"endpoint {request.endpoint} on {self.target.name} has no worker bounds in config "
                                "(actions.endpoint_workers): changing its workers is not allowed")
        endpoint = await self._endpoint_config(request.endpoint)
        old_min, old_max = int(endpoint.get("workersMin") or 0), int(endpoint.get("workersMax") or 0)
        price = bounds.usd_per_worker_hour if bounds.usd_per_worker_hour is not None else self.settings.prices.gpu_hour
        delta = round((request.max_workers - old_max) * price, 6)
        always_on = round((request.min_workers - old_min) * price, 6)
        refusal = None
        if not (bounds.min <= request.min_workers and request.max_workers <= bounds.max):
            refusal = (f"workers {request.min_workers}..{request.max_workers} are outside the bounds of endpoint "
                       f"{request.endpoint} ({bounds.min}..{bounds.max}, actions.endpoint_workers in config)")
        radius = []
        if request.max_workers < old_max:
            radius.append(f"at most {request.max_workers} worker(s) instead of {old_max}: jobs queue longer at peak")
        if request.max_workers == 0:
            radius.append(f"endpoint {request.endpoint} gets no workers at all: every job waits in the queue")
        if request.min_workers > old_min:
            radius.append(f"{request.min_workers - old_min} more worker(s) always on, billed even when idle "
                          f"({always_on:+.4f} USD/h)")
        if request.max_workers > old_max:
            radius.append(f"up to {request.max_workers - old_max} more worker(s) at peak ({delta:+.4f} USD/h at full "
                          "scale)")
        return Preview(
            summary=f"endpoint {endpoint.get('name') or request.endpoint} ({request.endpoint}) on {self.target.name}: "
                    f"workers {old_min}..{old_max} -> {request.min_workers}..{request.max_workers} "
                    f"({delta:+.4f} USD/h at full scale, {price:.2f} USD/worker/h)",
            object_name=request.endpoint,
            before={"workers_min": old_min, "workers_max": old_max, "name": endpoint.get("name"),
                    "gpu_ids": endpoint.get("gpuIds"), "bounds": [bounds.min, bounds.max]},
            expected={"workers_min": request.min_workers, "workers_max": request.max_workers,
                      "usd_per_worker_hour": price, "always_on_usd_per_hour_delta": always_on},
            cost_usd_per_hour_delta=delta, blast_radius=radius or ["no change in worker limits"], refusal=refusal,
        )

    async def _save_workers(self, request: EndpointWorkers) -> dict[str, Any]:
        endpoint = await self._endpoint_config(request.endpoint)
        fields = {"id": request.endpoint, "name": endpoint.get("name"), "gpuIds": endpoint.get("gpuIds"),
                  "templateId": endpoint.get("templateId"), "idleTimeout": endpoint.get("idleTimeout"),
                  "scalerType": endpoint.get("scalerType"), "scalerValue": endpoint.get("scalerValue"),
                  "workersMin": request.min_workers, "workersMax": request.max_workers}
        # values read from RunPod go back as JSON literals (quoted and escaped), never pasted into the query raw
        text = ", ".join(f"{k}: {orjson.dumps(v).decode()}" for k, v in fields.items() if v is not None)
        saved = (await self._graphql(f"mutation hulkOpsWorkers {{ saveEndpoint(input: {{ {text} }}) "
                                     f"{{ {ENDPOINT_FIELDS} }} }}")).get("saveEndpoint") or {}
        return {"endpoint": request.endpoint, "workers_min": saved.get("workersMin"),
                "workers_max": saved.get("workersMax")}


def _price(gpu: dict[str, Any], cloud_type: str) -> float | None:
    """On-demand USD per GPU and hour for this cloud, or None when RunPod offers none now (out of stock)."""
    lowest = (gpu.get("lowestPrice") or {}).get("uninterruptablePrice")
    if lowest is None:
        return None
    chosen = {"SECURE": gpu.get("securePrice"), "COMMUNITY": gpu.get("communityPrice")}.get(cloud_type, lowest)
    return float(chosen) if chosen is not None else None
