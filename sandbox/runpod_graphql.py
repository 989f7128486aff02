"""The GraphQL side of the RunPod simulator: the views of the account and the root fields.

Root query fields: ``myself`` (id, email, pubKey, currentSpendPerHr, clientBalance,
networkVolumes, pods, endpoints), ``pod(input: {podId})``, ``gpuTypes(input: {id})`` with
``lowestPrice(input: {gpuCount})``. Mutations: ``podFindAndDeployOnDemand``,
``podRentInterruptable``, ``podStop``, ``podResume``, ``podTerminate``, ``saveEndpoint`` (with ``id``:
modify an endpoint's name, GPUs and worker limits, as RunPod's GraphQL docs describe). Field names follow
RunPod's schema as the official SDK queries it (`runpod/api/queries`, `runpod/api/mutations`)
plus the pod ``runtime { uptimeInSeconds gpus { id gpuUtilPercent memoryUtilPercent } container }``.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox import graphql_lite
from sandbox.runpod_state import CloudError, Endpoint, GpuType, Pod, RunpodCloud


def answer(cloud: RunpodCloud, body: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one GraphQL request body, as RunPod shapes them."""
    if not isinstance(body, dict):
        return 400, {"errors": [{"message": "POST body must be a JSON object with a query"}]}
    variables = body.get("variables") or {}
    try:
        operation = graphql_lite.parse(body.get("query"), variables if isinstance(variables, dict) else {})
    except graphql_lite.GraphQLError as exc:
        return 400, {"errors": [{"message": str(exc), "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]}
    if operation.kind == "mutation":
        roots, type_name = mutation_roots(cloud), "Mutation"
    else:
        roots, type_name = query_roots(cloud), "Query"
    try:
        return 200, {"data": graphql_lite.execute(operation, roots, type_name)}
    except graphql_lite.GraphQLError as exc:
        return 400, {"errors": [{"message": str(exc), "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    except CloudError as exc:
        path = [operation.fields[0].key] if operation.fields else []
        return 200, {"errors": [{"message": str(exc), "path": path}], "data": None}


def query_roots(cloud: RunpodCloud) -> dict[str, Any]:
    return {
        "myself": lambda _args: user_view(cloud),
        "pod": lambda args: _pod_or_none(cloud, _input(args).get("podId")),
        "gpuTypes": lambda args: [gpu_view(g) for g in cloud.gpu_types.values()
                                  if not _input(args).get("id") or g.id == _input(args)["id"]],
    }


def mutation_roots(cloud: RunpodCloud) -> dict[str, Any]:
    def terminate(args: dict[str, Any]) -> None:
        cloud.terminate(str(_input(args).get("podId")))

    return {
        "podFindAndDeployOnDemand": lambda args: pod_view(cloud, cloud.deploy(_input(args))),
        "podRentInterruptable": lambda args: pod_view(cloud, cloud.deploy(_input(args), interruptable=True)),
        "podStop": lambda args: pod_view(cloud, cloud.stop(str(_input(args).get("podId")))),
        "podResume": lambda args: pod_view(
            cloud, cloud.resume(str(_input(args).get("podId")), _input(args).get("gpuCount"))),
        "podTerminate": terminate,
        "saveEndpoint": lambda args: endpoint_view(cloud, cloud.save_endpoint(_input(args))),
    }


def _input(args: dict[str, Any]) -> dict[str, Any]:
    value = args.get("input")
    return value if isinstance(value, dict) else {}


def _pod_or_none(cloud: RunpodCloud, pod_id: Any) -> dict[str, Any] | None:
    pod = cloud.pods.get(str(pod_id))
    return pod_view(cloud, pod) if pod else None


def user_view(cloud: RunpodCloud) -> dict[str, Any]:
    running = [p for p in cloud.pods.values() if p.running]
    return {
        "__typename": "User",
        "id": cloud.user_id,
        "email": "gpu-ops@example.com",
        "pubKey": "",
        "currentSpendPerHr": round(sum(p.cost_per_hr for p in running), 3),
        "clientBalance": 250.0,
        "networkVolumes": [],
        "pods": [pod_view(cloud, p) for p in cloud.pods.values()],
        "endpoints": [endpoint_view(cloud, e) for e in cloud.endpoints.values()],
    }


def pod_view(cloud: RunpodCloud, pod: Pod) -> dict[str, Any]:
    gpu = cloud.gpu_types[pod.gpu_type_id]
    now = time.time()
    uptime = int(now - pod.started_at) if pod.running else 0
    changed = time.strftime("%a %b %d %Y %H:%M:%S GMT+0000", time.gmtime(pod.status_changed_at))
    return {
        "__typename": "Pod",
        "id": pod.id,
        "name": pod.name,
        "desiredStatus": pod.desired_status,
        "costPerHr": pod.cost_per_hr,
        "adjustedCostPerHr": pod.cost_per_hr,
        "gpuCount": pod.gpu_count,
        "vcpuCount": pod.vcpu_count,
        "memoryInGb": pod.memory_gb,
        "containerDiskInGb": pod.container_disk_gb,
        "volumeInGb": pod.volume_gb,
        "volumeMountPath": "/workspace",
        "imageName": pod.image,
        "dockerArgs": "",
        "dockerId": None,
        "env": list(pod.env),
        "lastStatusChange": f"{'Rented' if pod.running else 'Exited'} by User: {changed}",
        "machineId": pod.machine_id,
        "podType": pod.pod_type,
        "port": None,
        "ports": pod.ports,
        "uptimeSeconds": uptime,
        "locked": False,
        "machine": {
            "__typename": "PodMachineInfo",
            "gpuDisplayName": gpu.display_name,
            "podHostId": f"{pod.id}-64410a3c",
            "dataCenterId": "EU-RO-1",
            "secureCloud": pod.pod_type == "RESERVED",
        },
        "runtime": _runtime(pod, uptime) if pod.running else None,
    }


def _runtime(pod: Pod, uptime: int) -> dict[str, Any]:
    return {
        "__typename": "PodRuntime",
        "uptimeInSeconds": uptime,
        "ports": [{"__typename": "PodRuntimePorts", "ip": "100.65.12.34", "isIpPublic": False, "privatePort": 8888,
                   "publicPort": 60123, "type": "http"}],
        "gpus": [{"__typename": "PodRuntimeGpus", "id": f"GPU-{pod.machine_id[:8]}-{i}",
                  "gpuUtilPercent": pod.gpu_util_pct, "memoryUtilPercent": pod.memory_util_pct}
                 for i in range(pod.gpu_count)],
        "container": {"__typename": "PodRuntimeContainer", "cpuPercent": round(pod.gpu_util_pct / 4, 1),
                      "memoryPercent": round(pod.memory_util_pct / 2, 1)},
    }


def gpu_view(gpu: GpuType) -> dict[str, Any]:
    def lowest_price(args: dict[str, Any]) -> dict[str, Any]:
        count = int(_input(args).get("gpuCount") or 1)
        available = gpu.available >= count
        on_demand = min(p for p in (gpu.secure_price, gpu.community_price) if p is not None)
        return {
            "__typename": "LowestPrice",
            "gpuTypeId": gpu.id,
            "minimumBidPrice": gpu.spot_price if available else None,
            "uninterruptablePrice": on_demand if available else None,
            "stockStatus": gpu.stock_status if available else None,
            "maxUnreservedGpuCount": gpu.available,
        }

    return {
        "__typename": "GpuType",
        "id": gpu.id,
        "displayName": gpu.display_name,
        "manufacturer": "Nvidia",
        "memoryInGb": gpu.memory_gb,
        "cudaCores": gpu.cuda_cores,
        "maxGpuCount": gpu.max_gpu_count,
        "secureCloud": True,
        "communityCloud": gpu.community_price is not None,
        "securePrice": gpu.secure_price,
        "communityPrice": gpu.community_price,
        "secureSpotPrice": gpu.spot_price,
        "communitySpotPrice": gpu.spot_price if gpu.community_price is not None else None,
        "oneWeekPrice": round(gpu.secure_price * 0.95, 3),
        "oneMonthPrice": round(gpu.secure_price * 0.9, 3),
        "threeMonthPrice": round(gpu.secure_price * 0.85, 3),
        "lowestPrice": lowest_price,
    }


def endpoint_view(cloud: RunpodCloud, endpoint: Endpoint) -> dict[str, Any]:
    return {
        "__typename": "Endpoint",
        "id": endpoint.id,
        "name": endpoint.name,
        "aiKey": None,
        "gpuIds": endpoint.gpu_ids,
        "gpuCount": 1,
        "idleTimeout": 5,
        "locations": None,
        "networkVolumeId": None,
        "networkVolume": None,
        "scalerType": "QUEUE_DELAY",
        "scalerValue": 4,
        "templateId": f"tpl{endpoint.id[:7]}",
        "type": "QB",
        "userId": cloud.user_id,
        "version": 1,
        "workersMax": endpoint.workers_max,
        "workersMin": endpoint.workers_min,
        "workersStandby": 1,
        "env": [],
        "createdAt": "2025-11-04T09:12:33.000Z",
    }
