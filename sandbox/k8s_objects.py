"""Kubernetes API objects as the API server writes them (JSON dicts), built from the simulator's state.

Every object is complete enough for the strict models of the official client (kubernetes 37) and
for the 1.37 OpenAPI schema in strict mode (`kubernetes_validate`): required fields present,
quantities as strings, timestamps in RFC 3339, zero-valued status fields omitted like the server does.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

K8S_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.4", "emulationMajor": "1", "emulationMinor": "33",
               "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
               "gitCommit": "74cdb426e5a9ef1d1c8fd7d8bd6d5e3e4e1e2a3c", "gitTreeState": "clean",
               "buildDate": "2025-08-12T17:54:46Z", "goVersion": "go1.24.5", "compiler": "gc",
               "platform": "linux/amd64"}
GPU = "nvidia.com/gpu"
_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_quantity(text: str) -> float:
    """The quantities this simulator writes ("500m", "512Mi", "4"); the probe uses the client's parser."""
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)


def ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass
class Node:
    name: str
    cpu: int  # cores
    memory_gib: int
    gpus: int
    ip: str
    created: float
    rv: str
    gpu_product: str | None = None
    ready: bool = True
    changed: float = 0.0  # last Ready transition
    uid: str = field(default_factory=new_uid)

    def labels(self) -> dict[str, str]:
        out = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
               "node.kubernetes.io/instance-type": "g5.12xlarge" if self.gpus else "m6i.4xlarge"}
        if self.gpus:
            out.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": self.gpu_product or "unknown",
                        "nvidia.com/gpu.count": str(self.gpus)})
        return out

    def taints(self) -> list[dict[str, str]]:
        out = [{"key": GPU, "value": "present", "effect": "NoSchedule"}] if self.gpus else []
        if not self.ready:
            out += [{"key": "node.kubernetes.io/unreachable", "effect": e, "timeAdded": ts(self.changed)}
                    for e in ("NoSchedule", "NoExecute")]
        return out

    def allocatable(self) -> dict[str, str]:
        out = {"cpu": f"{self.cpu * 1000 - 200}m", "memory": f"{self.memory_gib * 1024 - 1024}Mi",
               "pods": "110", "ephemeral-storage": "190Gi"}
        if self.gpus:
            out[GPU] = str(self.gpus)
        return out

    def allocatable_numbers(self) -> dict[str, float]:
        return {k: float(parse_quantity(v)) for k, v in self.allocatable().items()}


@dataclass
class Pod:
    namespace: str
    name: str
    rv: str
    created: float
    ready_at: float
    containers: list[dict[str, Any]]
    labels: dict[str, str]
    owner: dict[str, Any] | None = None  # the ReplicaSet's ownerReference
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node: str | None = None
    ip: str | None = None
    fault: str | None = None  # None | "crashloop" | "notready"
    restarts: int = 0
    uid: str = field(default_factory=new_uid)

    def fits(self, node: Node) -> bool:
        """Node selector matches and every NoSchedule taint is tolerated."""
        labels = node.labels()
        if any(labels.get(k) != v for k, v in self.node_selector.items()):
            return False
        return all(any(t.get("key") == taint["key"] and (t.get("operator") == "Exists" or t.get("value") ==
                                                         taint.get("value")) for t in self.tolerations)
                   for taint in node.taints() if taint["effect"] == "NoSchedule")

    def requests(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for container in self.containers:
            for key, value in container.get("resources", {}).get("requests", {}).items():
                total[key] = total.get(key, 0.0) + float(parse_quantity(value))
        return total


def meta(name: str, uid: str, rv: str, created: float, namespace: str | None = None,
         labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out.update({"uid": uid, "resourceVersion": rv, "creationTimestamp": ts(created)})
    if labels:
        out["labels"] = dict(labels)
    out.update(extra)
    return out


def render_node(node: Node) -> dict[str, Any]:
    capacity = {"cpu": str(node.cpu), "memory": f"{node.memory_gib}Gi", "pods": "110", "ephemeral-storage": "200Gi"}
    if node.gpus:
        capacity[GPU] = str(node.gpus)
    spec: dict[str, Any] = {"podCIDR": f"10.244.{node.ip.rsplit('.', 1)[1]}.0/24"}
    if node.taints():
        spec["taints"] = node.taints()
    beat = time.time() if node.ready else node.changed
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": meta(node.name, node.uid, node.rv, node.created, labels=node.labels()),
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": node.allocatable(),
            "conditions": [*(_node_condition(t, "False", r, m, beat, node.created) for t, r, m in (
                ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))),
                _node_condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", beat, node.changed)
                if node.ready else
                _node_condition("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                                beat, node.changed)],
            "addresses": [{"type": "InternalIP", "address": node.ip}, {"type": "Hostname", "address": node.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": node.uid.replace("-", ""), "systemUUID": node.uid, "bootID": new_uid(),
                "kernelVersion": "6.8.0-1021-aws", "osImage": "Ubuntu 24.04.2 LTS",
                "containerRuntimeVersion": "containerd://1.7.27", "kubeletVersion": K8S_VERSION["gitVersion"],
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    }


def _node_condition(kind: str, status: str, reason: str, message: str, beat: float, since: float) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastHeartbeatTime": ts(beat), "lastTransitionTime": ts(since),
            "reason": reason, "message": message}


def pod_ready(pod: Pod, node_ready: bool, now: float) -> bool:
    return pod.node is not None and now >= pod.ready_at and pod.fault is None and node_ready


def render_pod(pod: Pod, node: Node | None, now: float) -> dict[str, Any]:
    extra: dict[str, Any] = {"generateName": pod.name.rsplit("-", 1)[0] + "-"}
    if pod.owner:
        extra["ownerReferences"] = [pod.owner]
    spec: dict[str, Any] = {
        "containers": pod.containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "schedulerName": "default-scheduler",
        "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
    }
    if pod.node_selector:
        spec["nodeSelector"] = pod.node_selector
    if pod.tolerations:
        spec["tolerations"] = pod.tolerations
    if pod.node:
        spec["nodeName"] = pod.node
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": meta(pod.name, pod.uid, pod.rv, pod.created, pod.namespace, pod.labels, **extra),
            "spec": spec, "status": _pod_status(pod, node, now)}


def _pod_status(pod: Pod, node: Node | None, now: float) -> dict[str, Any]:
    created = ts(pod.created)
    if pod.node is None or node is None:
        return {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": created,
            "reason": "Unschedulable", "message": "0/3 nodes are available: insufficient resources."}]}
    started = now >= pod.ready_at
    ready = pod_ready(pod, node.ready, now)
    flag = "True" if ready else "False"
    conditions = [{"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": created} for t, s in (
        ("PodReadyToStartContainers", "True" if started else "False"), ("Initialized", "True"),
        ("Ready", flag), ("ContainersReady", flag), ("PodScheduled", "True"))]
    statuses = [_container_status(c, pod, started, ready) for c in pod.containers]
    return {"phase": "Running" if started else "Pending", "conditions": conditions, "hostIP": node.ip,
            "hostIPs": [{"ip": node.ip}], "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": created,
            "containerStatuses": statuses, "qosClass": "Burstable"}


def _container_status(container: dict[str, Any], pod: Pod, started: bool, ready: bool) -> dict[str, Any]:
    name = container["name"]
    out: dict[str, Any] = {"name": name, "image": container["image"], "imageID": "", "ready": ready,
                           "restartCount": pod.restarts, "started": started and pod.fault != "crashloop",
                           "lastState": {}}
    if not started:
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
    elif pod.fault == "crashloop":
        out["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
            f"back-off 5m0s restarting failed container={name} pod={pod.name}_{pod.namespace}({pod.uid})")}}
        out["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": ts(time.time() - 40),
                                           "finishedAt": ts(time.time() - 35), "containerID": f"containerd://{pod.uid}"}}
    else:
        out["state"] = {"running": {"startedAt": ts(pod.ready_at)}}
    if started:
        out["imageID"] = container["image"].split(":")[0] + "@sha256:" + pod.uid.replace("-", "")[:32] * 2
        out["containerID"] = "containerd://" + pod.uid.replace("-", "") * 2
    return out


def deployment_status(obj: dict[str, Any], pods: list[Pod], nodes: dict[str, Node], now: float) -> dict[str, Any]:
    desired = obj["spec"].get("replicas", 1)
    ready = sum(1 for p in pods if pod_ready(p, nodes[p.node].ready if p.node in nodes else False, now))
    status: dict[str, Any] = {"observedGeneration": obj["metadata"]["generation"]}
    for key, value in (("replicas", len(pods)), ("updatedReplicas", len(pods)), ("readyReplicas", ready),
                       ("availableReplicas", ready), ("unavailableReplicas", max(0, desired - ready))):
        if value:
            status[key] = value
    since = obj["metadata"]["creationTimestamp"]
    available = ready >= desired
    status["conditions"] = [
        {"type": "Available", "status": "True" if available else "False", "lastUpdateTime": since,
         "lastTransitionTime": since,
         "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if available else
         "Deployment does not have minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": since, "lastTransitionTime": since,
         "reason": "NewReplicaSetAvailable",
         "message": f'ReplicaSet "{obj["metadata"]["name"]}-{template_hash(obj)}" has successfully progressed.'},
    ]
    return status


def template_hash(obj: dict[str, Any]) -> str:
    import hashlib

    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha1(repr(obj["spec"]["template"]).encode(), usedforsecurity=False).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    m = deployment["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": deployment["spec"].get("replicas", 1)},
            "status": {"replicas": deployment["status"].get("replicas", 0), "selector": selector}}


def event(namespace: str, involved: dict[str, Any], reason: str, message: str, kind: str, rv: str, when: float,
          component: str, host: str | None = None, count: int = 1) -> dict[str, Any]:
    name = f"{involved['name']}.{uuid.uuid4().hex[:16]}"
    source: dict[str, Any] = {"component": component}
    if host:
        source["host"] = host
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": meta(name, new_uid(), rv, when, namespace),
            "involvedObject": involved, "reason": reason, "message": message, "source": source,
            "firstTimestamp": ts(when), "lastTimestamp": ts(when), "count": count, "type": kind,
            "reportingComponent": component, "reportingInstance": host or ""}


def reference(obj: dict[str, Any], field_path: str | None = None) -> dict[str, Any]:
    m = obj["metadata"]
    out = {"kind": obj["kind"], "name": m["name"], "uid": m["uid"], "apiVersion": obj["apiVersion"],
           "resourceVersion": m["resourceVersion"]}
    if "namespace" in m:
        out["namespace"] = m["namespace"]
    if field_path:
        out["fieldPath"] = field_path
    return out


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


def listing(kind: str, api_version: str, items: list[dict[str, Any]], rv: str,
            cont: str | None = None, remaining: int = 0) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        metadata["continue"] = cont
        metadata["remainingItemCount"] = remaining
    return {"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}
