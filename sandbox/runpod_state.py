"""The simulated RunPod account: GPU types with stock, pods, serverless endpoints and their jobs.

Plain domain state with no HTTP in it; `sandbox/runpod_sim.py` serves it. Prices are per GPU and
hour (USD). A pod's cost is its GPU price times its GPU count; only RUNNING pods hold GPUs of the
stock, so stopping or terminating a pod frees them and resuming takes them again.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

NO_INSTANCES = ("There are no longer any instances available with the requested specifications. "
                "Please refresh and try again.")
NO_FREE_GPUS = "There are not enough free GPUs on the host machine to start this pod."
WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")
DEFAULT_API_KEY = "rp_sim_0d7c5e2a9b4f"  # the simulator's well-known demo key


class CloudError(Exception):
    """A request the cloud refuses; the message is what RunPod's API answers."""


@dataclass
class GpuType:
    id: str
    display_name: str
    memory_gb: int
    secure_price: float
    community_price: float | None  # None: not offered on community cloud
    spot_price: float
    available: int  # free GPUs of this type (0: out of stock)
    max_gpu_count: int = 8
    cuda_cores: int = 0

    @property
    def stock_status(self) -> str | None:
        if self.available <= 0:
            return None
        return "High" if self.available >= 8 else "Medium" if self.available >= 3 else "Low"


@dataclass
class Pod:
    id: str
    name: str
    image: str
    gpu_type_id: str
    gpu_count: int
    cost_per_hr: float
    pod_type: str = "RESERVED"  # on-demand; "INTERRUPTABLE" for spot
    desired_status: str = "RUNNING"
    started_at: float = field(default_factory=time.time)
    status_changed_at: float = field(default_factory=time.time)
    gpu_util_pct: float = 0.0
    memory_util_pct: float = 0.0
    vcpu_count: int = 8
    memory_gb: int = 62
    container_disk_gb: int = 20
    volume_gb: int = 50
    env: list[str] = field(default_factory=list)
    ports: str = "8888/http,22/tcp"
    machine_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def running(self) -> bool:
        return self.desired_status == "RUNNING"


@dataclass
class Job:
    id: str
    input: Any
    status: str = "IN_QUEUE"
    output: Any = None
    error: str | None = None
    created_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    done_at: float | None = None


@dataclass
class Endpoint:
    id: str
    name: str
    gpu_ids: str
    workers: dict[str, int]
    workers_max: int = 3
    workers_min: int = 0
    backlog: int = 0  # queued jobs staged by control("queue_depth"), on top of real ones
    job_duration_s: float = 0.05
    jobs: dict[str, Job] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    retried: int = 0

    @property
    def capacity(self) -> int:
        return self.workers.get("idle", 0) + self.workers.get("running", 0)


def new_pod_id() -> str:
    return uuid.uuid4().hex[:14]


def seed_gpu_types() -> dict[str, GpuType]:
    gpus = [
        GpuType("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.89, None, 0.95, 6, cuda_cores=6912),
        GpuType("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 3.29, None, 1.75, 2, cuda_cores=16896),
        GpuType("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, None, 0.29, 12, cuda_cores=16384),
        GpuType("NVIDIA L40S", "L40S", 48, 1.03, None, 0.43, 0, cuda_cores=18176),
        GpuType("NVIDIA RTX A6000", "RTX A6000", 48, 0.79, 0.49, 0.25, 5, cuda_cores=10752),
    ]
    return {g.id: g for g in gpus}


def seed_pods(now: float) -> dict[str, Pod]:
    pods = [
        Pod("k3x9f0a2b7c1d4", "llm-finetune-a100", "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
            "NVIDIA A100-SXM4-80GB", 2, 3.78, started_at=now - 18_720, gpu_util_pct=87.0, memory_util_pct=71.0),
        Pod("m8q2w5e7r1t6y3", "sd-inference-4090", "runpod/stable-diffusion:web-ui-10.2.1",
            "NVIDIA GeForce RTX 4090", 1, 0.69, started_at=now - 93_600, gpu_util_pct=0.0, memory_util_pct=0.0),
        Pod("p4z6x1c9v3b8n2", "embeddings-batch-a6000", "ghcr.io/acme/embedder:1.8.0",
            "NVIDIA RTX A6000", 1, 0.79, started_at=now - 7_200, gpu_util_pct=42.0, memory_util_pct=35.0),
        Pod("h1j5k7l2g9f0d6", "eval-h100", "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
            "NVIDIA H100 80GB HBM3", 1, 3.29, desired_status="EXITED", started_at=now - 3_600,
            status_changed_at=now - 1_800),
    ]
    return {p.id: p for p in pods}


def seed_endpoints() -> dict[str, Endpoint]:
    endpoints = [
        Endpoint("vllm7x2k9q4p1a", "llama3-8b-vllm", "ADA_24,AMPERE_48",
                 {"idle": 1, "initializing": 0, "ready": 1, "running": 1, "throttled": 0, "unhealthy": 0},
                 completed=1_284, failed=7, retried=3),
        Endpoint("sdxl3n8b5t1c6y", "sdxl-turbo", "ADA_24",
                 {"idle": 0, "initializing": 0, "ready": 0, "running": 2, "throttled": 0, "unhealthy": 0},
                 workers_max=2, completed=5_310, failed=12, retried=9),
    ]
    return {e.id: e for e in endpoints}


class RunpodCloud:
    """Everything the account holds; callers serialise access (the simulator's lock)."""

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_keys = {api_key}
        self.user_id = "user_2f9KxQ7mB3vN"
        self.gpu_types = seed_gpu_types()
        self.pods = seed_pods(time.time())
        self.endpoints = seed_endpoints()

    # -- pods ---------------------------------------------------------------------------------
    def deploy(self, spec: dict[str, Any], interruptable: bool = False) -> Pod:
        gpu = self.gpu_types.get(str(spec.get("gpuTypeId")))
        count = int(spec.get("gpuCount") or 1)
        if gpu is None or gpu.available < count or count > gpu.max_gpu_count:
            raise CloudError(NO_INSTANCES)
        if not spec.get("imageName") and not spec.get("templateId"):
            raise CloudError("imageName or templateId is required")
        cloud = str(spec.get("cloudType") or "ALL")
        if interruptable:
            bid = float(spec.get("bidPerGpu") or 0)
            if bid < gpu.spot_price:
                raise CloudError(f"Your bid of ${bid:.3f}/GPU/hr is below the minimum bid of "
                                 f"${gpu.spot_price:.3f} for {gpu.display_name}.")
            price = bid
        elif cloud == "COMMUNITY":
            if gpu.community_price is None:
                raise CloudError(NO_INSTANCES)
            price = gpu.community_price
        elif cloud == "SECURE" or gpu.community_price is None:
            price = gpu.secure_price
        else:  # ALL: the cheaper cloud
            price = min(gpu.secure_price, gpu.community_price)
        gpu.available -= count
        env = [f"{e['key']}={e['value']}" for e in spec.get("env") or [] if isinstance(e, dict)]
        pod = Pod(new_pod_id(), str(spec.get("name") or "pod"), str(spec.get("imageName") or ""), gpu.id, count,
                  round(price * count, 3), pod_type="INTERRUPTABLE" if interruptable else "RESERVED",
                  container_disk_gb=int(spec.get("containerDiskInGb") or 20),
                  volume_gb=int(spec.get("volumeInGb") or 0), env=env, ports=str(spec.get("ports") or ""))
        self.pods[pod.id] = pod
        return pod

    def pod(self, pod_id: str) -> Pod:
        try:
            return self.pods[pod_id]
        except KeyError:
            raise CloudError(f"Pod {pod_id} not found") from None

    def stop(self, pod_id: str) -> Pod:
        pod = self.pod(pod_id)
        if pod.running:
            self.gpu_types[pod.gpu_type_id].available += pod.gpu_count
            pod.desired_status, pod.status_changed_at = "EXITED", time.time()
            pod.gpu_util_pct = pod.memory_util_pct = 0.0
        return pod

    def resume(self, pod_id: str, gpu_count: int | None = None) -> Pod:
        pod = self.pod(pod_id)
        if pod.running:
            return pod
        gpu = self.gpu_types[pod.gpu_type_id]
        count = int(gpu_count or pod.gpu_count)
        if gpu.available < count:
            raise CloudError(NO_FREE_GPUS)
        gpu.available -= count
        pod.cost_per_hr = round(pod.cost_per_hr / pod.gpu_count * count, 3)
        pod.gpu_count, pod.desired_status = count, "RUNNING"
        pod.started_at = pod.status_changed_at = time.time()
        return pod

    def terminate(self, pod_id: str) -> None:
        self.stop(pod_id)
        del self.pods[pod_id]

    # -- serverless ---------------------------------------------------------------------------
    def endpoint(self, endpoint_id: str) -> Endpoint:
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise CloudError(f"endpoint {endpoint_id} not found") from None

    def save_endpoint(self, spec: dict[str, Any]) -> Endpoint:
        """RunPod's saveEndpoint with an `id`: modify that endpoint (name, gpuIds and templateId are required
        as in RunPod's schema). Creating endpoints is not simulated."""
        missing = [f for f in ("name", "gpuIds", "templateId") if not spec.get(f)]
        if missing:
            raise CloudError(f"saveEndpoint: {', '.join(missing)} required")
        if not spec.get("id"):
            raise CloudError("saveEndpoint without id (creating an endpoint) is not supported by the simulator")
        endpoint = self.endpoint(str(spec["id"]))
        low = int(spec.get("workersMin", endpoint.workers_min))
        high = int(spec.get("workersMax", endpoint.workers_max))
        if low < 0 or high < low:
            raise CloudError(f"workersMin ({low}) must be between 0 and workersMax ({high})")
        endpoint.name, endpoint.gpu_ids = str(spec["name"]), str(spec["gpuIds"])
        endpoint.workers_min, endpoint.workers_max = low, high
        return endpoint

    def submit(self, endpoint_id: str, payload: Any, sync: bool = False) -> Job:
        endpoint = self.endpoint(endpoint_id)
        job = Job(f"{'sync-' if sync else ''}{uuid.uuid4()}-u1", payload)
        endpoint.jobs[job.id] = job
        self.advance(endpoint)
        return job

    def advance(self, endpoint: Endpoint, now: float | None = None) -> None:
        """Move jobs along: healthy workers pick queued jobs; a job takes `job_duration_s`."""
        now = time.monotonic() if now is None else now
        busy = sum(1 for j in endpoint.jobs.values() if j.status == "IN_PROGRESS")
        for job in endpoint.jobs.values():
            if job.status == "IN_PROGRESS" and now - (job.started_at or now) >= endpoint.job_duration_s:
                self._finish(endpoint, job, now)
                busy -= 1
        for job in endpoint.jobs.values():
            if job.status == "IN_QUEUE" and busy < endpoint.capacity:
                job.status, job.started_at, busy = "IN_PROGRESS", now, busy + 1

    def _finish(self, endpoint: Endpoint, job: Job, now: float) -> None:
        job.done_at = now
        payload = job.input.get("input") if isinstance(job.input, dict) else None
        if isinstance(payload, dict) and payload.get("fail"):
            job.status, job.error = "FAILED", "handler raised: simulated failure (input.fail was set)"
            endpoint.failed += 1
        else:
            job.status, job.output = "COMPLETED", {"echo": payload, "worker": f"{endpoint.id}-w1"}
            endpoint.completed += 1

    def cancel(self, endpoint_id: str, job_id: str) -> Job:
        endpoint = self.endpoint(endpoint_id)
        job = endpoint.jobs.get(job_id)
        if job is None:
            raise CloudError(f"job {job_id} not found")
        if job.status in ("IN_QUEUE", "IN_PROGRESS"):
            job.status = "CANCELLED"
        return job

    def health(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoint(endpoint_id)
        self.advance(endpoint)
        states = [j.status for j in endpoint.jobs.values()]
        return {
            "jobs": {
                "completed": endpoint.completed,
                "failed": endpoint.failed,
                "inProgress": states.count("IN_PROGRESS"),
                "inQueue": states.count("IN_QUEUE") + endpoint.backlog,
                "retried": endpoint.retried,
            },
            "workers": dict(endpoint.workers),
        }
