"""The simulated cluster's state: nodes, namespaces, deployments, their pods and events.

Deployments own their pods the way the controllers do it: changing `spec.replicas` creates or
deletes pods at once; a new pod is scheduled onto a Ready node with room for its requests (GPU
pods only onto GPU nodes; otherwise it stays Pending with a FailedScheduling event) and becomes
ready `ready_delay_s` later. Deployment status is derived from the pods whenever it is read.
Every change bumps the cluster's resourceVersion, which the changed object takes as its own.
Not thread-safe: the simulator holds its lock around every call.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

from sandbox import k8s_objects as ko
from sandbox.k8s_objects import GPU, Node, Pod

NAMESPACES = ("default", "kube-system", "hulk-prod", "hulk-staging", "ml")
# name, cores, memory GiB, GPUs, internal IP, GPU product
NODES = (("hulk-cpu-1", 16, 64, 0, "10.0.1.11", None), ("hulk-cpu-2", 16, 64, 0, "10.0.1.12", None),
         ("hulk-gpu-1", 48, 192, 4, "10.0.1.21", "NVIDIA-A10G"))
# namespace, name, replicas, image, cpu, memory, GPUs per pod
DEPLOYMENTS = (
    ("kube-system", "coredns", 2, "registry.k8s.io/coredns/coredns:v1.12.0", "100m", "70Mi", 0),
    ("hulk-prod", "api-gateway", 3, "ghcr.io/hulk/api-gateway:1.14.2", "500m", "512Mi", 0),
    ("hulk-prod", "graph-writer", 2, "ghcr.io/hulk/graph-writer:0.9.7", "1", "2Gi", 0),
    ("hulk-prod", "ingest-worker", 2, "ghcr.io/hulk/ingest-worker:0.9.7", "750m", "1536Mi", 0),
    ("hulk-staging", "api-gateway", 1, "ghcr.io/hulk/api-gateway:1.15.0-rc.1", "250m", "256Mi", 0),
    ("hulk-staging", "graph-writer", 1, "ghcr.io/hulk/graph-writer:0.10.0-rc.2", "500m", "1Gi", 0),
    ("ml", "embedder", 2, "ghcr.io/hulk/embedder:2.3.1", "4", "16Gi", 1),
    ("ml", "reranker", 1, "ghcr.io/hulk/reranker:1.1.0", "2", "8Gi", 1),
)
MAX_EVENTS = 1000
DAY = 86_400.0


class ApiError(Exception):
    """An API failure; the simulator answers it with a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> dict[str, Any]:
        return ko.status(self.code, self.reason, self.message, self.details)


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    full = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{full} "{name}" not found', {"name": name, "group": group, "kind": resource})


class Cluster:
    def __init__(self, ready_delay_s: float = 0.0, seed: bool = True) -> None:
        self.ready_delay_s = ready_delay_s
        self.rv = 4_812_000
        self.started = time.time()
        self.nodes: dict[str, Node] = {}
        self.namespaces: dict[str, tuple[str, float]] = {}  # name -> (uid, created)
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}  # stored without status
        self.pods: dict[tuple[str, str], Pod] = {}
        self.events: list[dict[str, Any]] = []
        self._random = random.Random(37)
        self._ips = 10
        if seed:
            self._seed()

    def bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    # -- seed ---------------------------------------------------------------------------------
    def _seed(self) -> None:
        now = self.started
        for name in NAMESPACES:
            self.namespaces[name] = (ko.new_uid(), now - 40 * DAY)
        for name, cpu, mem, gpus, ip, product in NODES:
            self.nodes[name] = Node(name, cpu, mem, gpus, ip, now - 12 * DAY, self.bump(), product,
                                    changed=now - 12 * DAY)
        for ns, name, replicas, image, cpu, mem, gpus in DEPLOYMENTS:
            self.add_deployment(ns, name, replicas, image, cpu, mem, gpus, created=now - 3 * DAY)
        for pod in self.pods.values():  # seeded pods have been running for a while
            pod.created = pod.ready_at = now - 3 * DAY + self._random.uniform(0, 60)
        old = self.deployments[("hulk-staging", "graph-writer")]
        self.add_event("hulk-staging", ko.reference(old),
                       "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", "Warning",
                       "kubelet", when=now - 2 * 3600, count=4)

    def add_deployment(self, ns: str, name: str, replicas: int, image: str, cpu: str, mem: str, gpus: int = 0,
                       created: float | None = None) -> dict[str, Any]:
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "hulk"}
        requests = {"cpu": cpu, "memory": mem, **({GPU: str(gpus)} if gpus else {})}
        limits = {"memory": mem, **({GPU: str(gpus)} if gpus else {})}
        container = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                     "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                     "resources": {"requests": requests, "limits": limits},
                     "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
        pod_spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}
        if gpus:
            pod_spec["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
            pod_spec["tolerations"] = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
        obj = {
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": ko.meta(name, ko.new_uid(), self.bump(), created or time.time(), ns, labels,
                                generation=1, annotations={"deployment.kubernetes.io/revision": "1"}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                             "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        }
        self.deployments[(ns, name)] = obj
        self.reconcile(ns, name, quiet=True)
        return obj

    # -- reads --------------------------------------------------------------------------------
    def render_deployment(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.deployments.get((ns, name))
        if obj is None:
            raise not_found("deployments", name, "apps")
        out = copy.deepcopy(obj)
        out["status"] = ko.deployment_status(obj, self.pods_of(ns, name), self.nodes, time.time())
        return out

    def deployment_items(self, ns: str | None) -> list[dict[str, Any]]:
        return [self.render_deployment(n, d) for (n, d) in sorted(self.deployments) if ns in (None, n)]

    def pod_items(self, ns: str | None) -> list[dict[str, Any]]:
        now = time.time()
        return [ko.render_pod(p, self.nodes.get(p.node or ""), now) for (n, _), p in sorted(self.pods.items())
                if ns in (None, n)]

    def node_items(self) -> list[dict[str, Any]]:
        return [ko.render_node(self.nodes[n]) for n in sorted(self.nodes)]

    def namespace_items(self) -> list[dict[str, Any]]:
        return [{"kind": "Namespace", "apiVersion": "v1",
                 "metadata": ko.meta(n, uid, str(self.rv), created, labels={"kubernetes.io/metadata.name": n}),
                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
                for n, (uid, created) in sorted(self.namespaces.items())]

    def event_items(self, ns: str | None) -> list[dict[str, Any]]:
        return [e for e in self.events if ns in (None, e["metadata"]["namespace"])]

    def pods_of(self, ns: str, deployment: str) -> list[Pod]:
        return [p for (n, _), p in self.pods.items() if n == ns and p.labels.get("app.kubernetes.io/name")
                == deployment and p.owner is not None]

    # -- writes -------------------------------------------------------------------------------
    def add_event(self, ns: str, involved: dict[str, Any], reason: str, message: str, kind: str = "Warning",
                  component: str = "kubelet", host: str | None = None, when: float | None = None,
                  count: int = 1) -> dict[str, Any]:
        item = ko.event(ns, involved, reason, message, kind, self.bump(), when or time.time(), component, host, count)
        self.events.append(item)
        del self.events[:-MAX_EVENTS]
        return item

    def reconcile(self, ns: str, name: str, quiet: bool = False) -> None:
        """Create or delete pods until the deployment has spec.replicas of them."""
        obj = self.deployments[(ns, name)]
        desired = obj["spec"].get("replicas", 1)
        pods = self.pods_of(ns, name)
        before = len(pods)
        now = time.time()
        while len(pods) < desired:
            pods.append(self._new_pod(obj, now))
        if len(pods) > desired:
            # the ReplicaSet controller deletes unscheduled, then not ready, then the newest pods first
            pods.sort(key=lambda p: (p.node is not None, ko.pod_ready(p, self._node_ready(p), now), -p.created))
            for victim in pods[: len(pods) - desired]:
                del self.pods[(victim.namespace, victim.name)]
            self.schedule_pending()
        if before != desired and not quiet:
            ref = ko.reference(self.render_deployment(ns, name))
            verb = "up" if desired > before else "down"
            self.add_event(ns, ref, "ScalingReplicaSet", f"Scaled {verb} replica set {name}-{ko.template_hash(obj)}"
                           f" from {before} to {desired}", "Normal", "deployment-controller")

    def _new_pod(self, obj: dict[str, Any], now: float) -> Pod:
        m, spec = obj["metadata"], obj["spec"]
        hash_ = ko.template_hash(obj)
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        while True:
            name = f"{m['name']}-{hash_}-{''.join(self._random.choice(alphabet) for _ in range(5))}"
            if (m["namespace"], name) not in self.pods:
                break
        owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{m['name']}-{hash_}",
                 "uid": ko.new_uid(), "controller": True, "blockOwnerDeletion": True}
        template = copy.deepcopy(spec["template"])
        pod = Pod(m["namespace"], name, self.bump(), now, now + self.ready_delay_s, template["spec"]["containers"],
                  {**template["metadata"].get("labels", {}), "pod-template-hash": hash_}, owner,
                  template["spec"].get("nodeSelector", {}), template["spec"].get("tolerations", []))
        self.pods[(pod.namespace, pod.name)] = pod
        if not self._schedule(pod):
            self.add_event(pod.namespace, ko.reference(ko.render_pod(pod, None, now)), "FailedScheduling",
                           self._unschedulable_message(pod), "Warning", "default-scheduler")
        return pod

    def _schedule(self, pod: Pod) -> bool:
        wanted = pod.requests()
        best: tuple[float, Node] | None = None
        for node in self.nodes.values():
            if not pod.fits(node):
                continue
            free = self._free(node)
            if all(wanted.get(r, 0) <= free.get(r, 0) for r in wanted):
                load = 1 - free["cpu"] / node.allocatable_numbers()["cpu"]
                if best is None or load < best[0]:
                    best = (load, node)
        if best is None:
            return False
        node = best[1]
        pod.node = node.name
        self._ips += 1
        pod.ip = f"10.244.{node.ip.rsplit('.', 1)[1]}.{self._ips % 250 + 2}"
        return True

    def _free(self, node: Node) -> dict[str, float]:
        free = node.allocatable_numbers()
        for pod in self.pods.values():
            if pod.node == node.name:
                for key, value in pod.requests().items():
                    free[key] = free.get(key, 0.0) - value
        return free

    def _unschedulable_message(self, pod: Pod) -> str:
        total = len(self.nodes)
        reasons: dict[str, int] = {}
        for node in self.nodes.values():
            if not node.ready:
                why = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
            elif not pod.fits(node):
                why = "node(s) didn't match Pod's node affinity/selector" if pod.node_selector else \
                    f"node(s) had untolerated taint {{{GPU}: present}}"
            else:
                why = f"Insufficient {GPU if pod.requests().get(GPU) else 'cpu'}"
            reasons[why] = reasons.get(why, 0) + 1
        parts = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        return f"0/{total} nodes are available: {parts}. preemption: 0/{total} nodes are available: " \
               f"{total} Preemption is not helpful for scheduling."

    def schedule_pending(self) -> None:
        for pod in sorted(self.pods.values(), key=lambda p: p.created):
            if pod.node is None and self._schedule(pod):
                pod.rv = self.bump()
                pod.ready_at = max(pod.ready_at, time.time() + self.ready_delay_s)

    def _node_ready(self, pod: Pod) -> bool:
        node = self.nodes.get(pod.node or "")
        return node is not None and node.ready
