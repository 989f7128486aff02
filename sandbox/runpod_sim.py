"""RunPod cloud simulator: the GraphQL API and the serverless REST API on one loopback port.

The official `runpod` SDK works against it unmodified: set ``RUNPOD_API_BASE_URL`` to ``url``
(the SDK posts to ``{base}/graphql`` with ``Authorization: Bearer <key>``; ``?api_key=`` works
too) and the serverless base (``runpod.endpoint_url_base``) to ``endpoint_url`` (``{url}/v2``).

GraphQL (see `sandbox/runpod_graphql.py`): ``myself { pods endpoints ... }``, ``pod(input:)``,
``gpuTypes`` (with ``lowestPrice``), ``podFindAndDeployOnDemand``, ``podRentInterruptable``,
``podStop``, ``podResume``, ``podTerminate``. A wrong key is HTTP 401; refused requests answer
``{"errors": [{"message": ...}]}`` with RunPod's wording (an unknown or sold-out GPU type: "There
are no longer any instances available with the requested specifications. ...").
Serverless, with bearer auth: ``GET /v2/{id}/health``, ``POST /v2/{id}/run``, ``/runsync``,
``GET|POST /v2/{id}/status/{job}``, ``/stream/{job}``, ``POST /v2/{id}/cancel/{job}``, ``/purge-queue``.
An input with ``"fail": true`` makes a job FAILED.

Seeded account (`sandbox/runpod_state.py`): five GPU types (A100 SXM $1.89/h, H100 SXM $3.29/h,
RTX 4090 $0.69/h, L40S $1.03/h out of stock, RTX A6000 $0.79/h), three running pods (one idle at
0 % GPU) costing $5.26/h in total plus one stopped pod, and two serverless endpoints.

control(action, body):
- ``unhealthy_workers`` {endpoint, count}: that many unhealthy workers
- ``workers`` {endpoint, idle?, running?, initializing?, ready?, throttled?, unhealthy?}: set worker counts
- ``queue_depth`` {endpoint, count}: that many extra jobs waiting in the queue
- ``stock`` {gpu, available}: free GPUs of a type (0: out of stock)
- ``pod_utilisation`` {pod, gpu_util_pct, memory_util_pct?}: what the pod's GPUs report
- ``api_key`` {key}: the only valid key from now on (the old one becomes invalid)
- ``revoke_api_key`` {}: no key is valid (every call is 401)
- ``reset`` {}: the seeded account again
- ``state`` {}: a summary (running pods, cost per hour, endpoints)

    python -m sandbox.runpod_sim --port 8790 [--api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiohttp import web

from sandbox import runpod_graphql
from sandbox.runpod_state import DEFAULT_API_KEY, WORKER_STATES, CloudError, Job, RunpodCloud
from sandbox.simbase import HttpSimulator


class RunpodSimulator(HttpSimulator):
    name = "runpod"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.cloud = RunpodCloud(api_key)

    @property
    def url(self) -> str:
        """The GraphQL base (RUNPOD_API_BASE_URL)."""
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """The serverless base (RUNPOD_ENDPOINT_BASE_URL / runpod.endpoint_url_base)."""
        return f"{self.url}/v2"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_post("/graphql", self._graphql)
        app.router.add_get("/v2/{endpoint}/health", self._health)
        app.router.add_post("/v2/{endpoint}/run", self._run)
        app.router.add_post("/v2/{endpoint}/runsync", self._runsync)
        app.router.add_route("*", "/v2/{endpoint}/status/{job}", self._status)
        app.router.add_route("*", "/v2/{endpoint}/stream/{job}", self._stream)
        app.router.add_post("/v2/{endpoint}/cancel/{job}", self._cancel)
        app.router.add_post("/v2/{endpoint}/purge-queue", self._purge)

    # -- auth ---------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip() or request.query.get("api_key", "")
        with self.lock:
            return bool(key) and key in self.cloud.api_keys

    # -- GraphQL ------------------------------------------------------------------------------
    async def _index(self, _request: web.Request) -> web.Response:
        return web.json_response({"service": "runpod simulator", "graphql": f"{self.url}/graphql",
                                  "serverless": self.endpoint_url})

    async def _graphql(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"errors": [{"message": "Unauthorized"}]}, status=401)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"errors": [{"message": "POST body sent invalid JSON."}]}, status=400)
        with self.lock:
            status, payload = runpod_graphql.answer(self.cloud, body)
        return web.json_response(payload, status=status)

    # -- serverless ---------------------------------------------------------------------------
    async def _serverless(self, request: web.Request, action: Any) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            with self.lock:
                return web.json_response(action(request.match_info["endpoint"], request.match_info.get("job")))
        except CloudError as exc:
            return web.json_response({"error": str(exc)}, status=404)

    async def _health(self, request: web.Request) -> web.Response:
        return await self._serverless(request, lambda endpoint, _job: self.cloud.health(endpoint))

    async def _payload(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or "input" not in body:
            return web.json_response({"error": "request body must be a JSON object with an input"}, status=400)
        return body

    async def _run(self, request: web.Request) -> web.Response:
        body = await self._payload(request)
        if isinstance(body, web.Response):
            return body
        return await self._serverless(
            request, lambda endpoint, _job: _job_json(self.cloud.submit(endpoint, body), brief=True))

    async def _runsync(self, request: web.Request) -> web.Response:
        body = await self._payload(request)
        if isinstance(body, web.Response):
            return body
        if not self._authorised(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            with self.lock:
                endpoint = self.cloud.endpoint(request.match_info["endpoint"])
                job = self.cloud.submit(endpoint.id, body, sync=True)
                wait_s = endpoint.job_duration_s if job.status == "IN_PROGRESS" else 0.0
        except CloudError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        await asyncio.sleep(wait_s)  # the job runs while the request waits, as /runsync does
        with self.lock:
            self.cloud.advance(endpoint)
            return web.json_response(_job_json(job))

    async def _status(self, request: web.Request) -> web.Response:
        return await self._serverless(request, lambda endpoint, job: _job_json(self._job(endpoint, job)))

    async def _stream(self, request: web.Request) -> web.Response:
        def stream(endpoint: str, job_id: str) -> dict[str, Any]:
            job = self._job(endpoint, job_id)
            chunks = [{"output": job.output}] if job.status == "COMPLETED" else []
            return {"status": job.status, "stream": chunks}

        return await self._serverless(request, stream)

    async def _cancel(self, request: web.Request) -> web.Response:
        return await self._serverless(
            request, lambda endpoint, job: _job_json(self.cloud.cancel(endpoint, job), brief=True))

    async def _purge(self, request: web.Request) -> web.Response:
        def purge(endpoint_id: str, _job: str | None) -> dict[str, Any]:
            endpoint = self.cloud.endpoint(endpoint_id)
            queued = [j for j in endpoint.jobs.values() if j.status == "IN_QUEUE"]
            for job in queued:
                job.status = "CANCELLED"
            removed, endpoint.backlog = len(queued) + endpoint.backlog, 0
            return {"removed": removed, "status": "completed"}

        return await self._serverless(request, purge)

    def _job(self, endpoint_id: str, job_id: str) -> Job:
        endpoint = self.cloud.endpoint(endpoint_id)
        self.cloud.advance(endpoint)
        job = endpoint.jobs.get(job_id)
        if job is None:
            raise CloudError(f"job {job_id} not found")
        return job

    # -- domain states ------------------------------------------------------------------------
    def control(self, action: str, body: dict[str, Any]) -> Any:
        try:
            return self._control(action, body)
        except CloudError as exc:  # an unknown pod or endpoint: the same family as an unknown action
            raise KeyError(str(exc)) from None

    def _control(self, action: str, body: dict[str, Any]) -> Any:
        with self.lock:
            cloud = self.cloud
            if action == "unhealthy_workers":
                cloud.endpoint(body["endpoint"]).workers["unhealthy"] = int(body.get("count", 1))
            elif action == "workers":
                workers = cloud.endpoint(body["endpoint"]).workers
                workers.update({k: int(v) for k, v in body.items() if k in WORKER_STATES})
            elif action == "queue_depth":
                cloud.endpoint(body["endpoint"]).backlog = int(body["count"])
            elif action == "stock":
                if body["gpu"] not in cloud.gpu_types:
                    raise KeyError(f"unknown GPU type {body['gpu']!r}")
                cloud.gpu_types[body["gpu"]].available = int(body["available"])
            elif action == "pod_utilisation":
                pod = cloud.pod(body["pod"])
                pod.gpu_util_pct = float(body["gpu_util_pct"])
                pod.memory_util_pct = float(body.get("memory_util_pct", pod.memory_util_pct))
            elif action == "api_key":
                cloud.api_keys = {str(body["key"])}
            elif action == "revoke_api_key":
                cloud.api_keys = set()
            elif action == "reset":
                self.cloud = cloud = RunpodCloud(self.api_key)
            elif action != "state":
                raise KeyError(action)
            return self.summary()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            running = [p for p in self.cloud.pods.values() if p.running]
            return {
                "pods_running": len(running),
                "cost_per_hr_total": round(sum(p.cost_per_hr for p in running), 3),
                "pods": {p.id: {"name": p.name, "status": p.desired_status, "gpu_util_pct": p.gpu_util_pct}
                         for p in self.cloud.pods.values()},
                "endpoints": {e.id: self.cloud.health(e.id) for e in self.cloud.endpoints.values()},
                "stock": {g.id: g.available for g in self.cloud.gpu_types.values()},
            }


def _job_json(job: Job, brief: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": job.id, "status": job.status}
    if brief:
        return out
    if job.started_at is not None:
        out["delayTime"] = int((job.started_at - job.created_at) * 1000)
    if job.done_at is not None and job.started_at is not None:
        out["executionTime"] = int((job.done_at - job.started_at) * 1000)
    if job.output is not None:
        out["output"] = job.output
    if job.error is not None:
        out["error"] = job.error
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.runpod_sim", description="RunPod cloud simulator")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key it accepts")
    args = parser.parse_args(argv)
    sim = RunpodSimulator(args.host, args.port or None, api_key=args.api_key)
    return sim.serve_forever(lambda: f"{sim.url}  RunPod simulator: RUNPOD_API_BASE_URL={sim.url} "
                                     f"RUNPOD_ENDPOINT_BASE_URL={sim.endpoint_url} api key {args.api_key}")


if __name__ == "__main__":
    raise SystemExit(main())
