"""Writes to the simulated cluster: deployment and scale updates (validated like the API server
does it) and the domain states `control()` stages (short deployments, crash loops, NotReady nodes).

Updates take the whole new object (the simulator applies a patch to the current object first),
check it, and either store it (bumping resourceVersion and, for a spec change, generation) or, with
``dry_run``, only return what would be stored.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from sandbox import k8s_objects as ko
from sandbox.k8s_cluster import ApiError, Cluster, not_found


def _invalid(kind: str, name: str, field: str, value: Any, why: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: Invalid value: {value!r}: {why}',
                    {"name": name, "group": kind.split(".", 1)[1] if "." in kind else "",
                     "kind": kind.split(".", 1)[0].lower() + "s",
                     "causes": [{"reason": "FieldValueInvalid", "message": f"Invalid value: {value!r}: {why}",
                                 "field": field}]})


def _conflict(name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on deployments.apps "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": "apps", "kind": "deployments"})


def _check_identity(new: dict[str, Any], current: dict[str, Any], name: str) -> None:
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata: required")
    if meta.get("name", name) != name:
        raise ApiError(400, "BadRequest",
                       f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    sent_rv = meta.get("resourceVersion")
    if sent_rv not in (None, "") and sent_rv != current["metadata"]["resourceVersion"]:
        raise _conflict(name)


def _check_replicas(kind: str, name: str, replicas: Any) -> int:
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise _invalid(kind, name, "spec.replicas", replicas, "must be an integer")
    if replicas < 0:
        raise _invalid(kind, name, "spec.replicas", replicas, "must be greater than or equal to 0")
    return replicas


def update_deployment(cluster: Cluster, ns: str, name: str, new: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """Store `new` (a whole Deployment) as the deployment's metadata and spec; return it rendered."""
    current = cluster.render_deployment(ns, name)
    _check_identity(new, current, name)
    kind = "Deployment.apps"
    spec = new.get("spec")
    if not isinstance(spec, dict):
        raise ApiError(400, "BadRequest", "spec: required")
    _check_replicas(kind, name, spec.get("replicas", 1))
    if spec.get("selector") != current["spec"]["selector"]:
        raise _invalid(kind, name, "spec.selector", spec.get("selector"), "field is immutable")
    labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in spec["selector"].get("matchLabels", {}).items()):
        raise _invalid(kind, name, "spec.template.metadata.labels", labels, "`selector` does not match template "
                       "`labels`")
    containers = (spec["template"].get("spec") or {}).get("containers")
    if not containers or any(not c.get("name") or not c.get("image") for c in containers):
        raise _invalid(kind, name, "spec.template.spec.containers", containers, "every container needs name and image")
    stored = cluster.deployments[(ns, name)]
    result = copy.deepcopy(stored)
    for key in ("labels", "annotations"):
        if key in new["metadata"]:
            result["metadata"][key] = dict(new["metadata"][key] or {})
    spec_changed = spec != stored["spec"]
    result["spec"] = copy.deepcopy(spec)
    if spec_changed:
        result["metadata"]["generation"] += 1
    if dry_run:
        result["status"] = current["status"]
        return result
    if spec_changed or result["metadata"] != stored["metadata"]:
        template_changed = spec.get("template") != stored["spec"].get("template")
        result["metadata"]["resourceVersion"] = cluster.bump()
        cluster.deployments[(ns, name)] = result
        if template_changed:  # a rollout: every pod is replaced by one of the new template
            for pod in cluster.pods_of(ns, name):
                del cluster.pods[(pod.namespace, pod.name)]
        cluster.reconcile(ns, name)
    return cluster.render_deployment(ns, name)


def update_scale(cluster: Cluster, ns: str, name: str, scale: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """Apply a whole Scale object (spec.replicas) to the deployment; return the resulting Scale."""
    current = cluster.render_deployment(ns, name)
    _check_identity(scale, current, name)
    replicas = _check_replicas("Scale.autoscaling", name, (scale.get("spec") or {}).get("replicas", 0))
    if dry_run:
        result = ko.scale_of(current)
        result["spec"]["replicas"] = replicas
        return result
    if replicas != current["spec"].get("replicas", 1):
        stored = cluster.deployments[(ns, name)]
        stored["spec"]["replicas"] = replicas
        stored["metadata"]["generation"] += 1
        stored["metadata"]["resourceVersion"] = cluster.bump()
        cluster.reconcile(ns, name)
    return ko.scale_of(cluster.render_deployment(ns, name))


# -- staged domain states (control actions) -----------------------------------------------------
def make_short(cluster: Cluster, ns: str, name: str, count: int = 1) -> list[str]:
    """`count` ready pods of the deployment start failing their readiness probe."""
    pods = [p for p in cluster.pods_of(ns, name) if p.fault is None and p.node is not None]
    if not cluster.deployments.get((ns, name)):
        raise not_found("deployments", name, "apps")
    hit = pods[:count]
    for pod in hit:
        pod.fault, pod.rv = "notready", cluster.bump()
        cluster.add_event(ns, ko.reference(ko.render_pod(pod, cluster.nodes.get(pod.node or ""), time.time()),
                                           f"spec.containers{{{pod.containers[0]['name']}}}"),
                          "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", "Warning",
                          "kubelet", pod.node)
    return [p.name for p in hit]


def crashloop(cluster: Cluster, ns: str, pod_name: str | None = None, deployment: str | None = None) -> str:
    """One pod (by name, or the first of a deployment) goes into CrashLoopBackOff."""
    if pod_name:
        pod = cluster.pods.get((ns, pod_name))
        if pod is None:
            raise not_found("pods", pod_name)
    else:
        candidates = [p for p in cluster.pods_of(ns, deployment or "") if p.node is not None]
        if not candidates:
            raise not_found("deployments", deployment or "", "apps")
        pod = candidates[0]
    container = pod.containers[0]["name"]
    pod.fault, pod.restarts, pod.rv = "crashloop", pod.restarts + 6, cluster.bump()
    ref = ko.reference(ko.render_pod(pod, cluster.nodes.get(pod.node or ""), time.time()),
                       f"spec.containers{{{container}}}")
    cluster.add_event(ns, ref, "BackOff", f"Back-off restarting failed container {container} in pod "
                      f"{pod.name}_{ns}({pod.uid})", "Warning", "kubelet", pod.node, count=6)
    return pod.name


def set_node_ready(cluster: Cluster, name: str, ready: bool) -> None:
    node = cluster.nodes.get(name)
    if node is None:
        raise not_found("nodes", name)
    if node.ready == ready:
        return
    node.ready, node.changed, node.rv = ready, time.time(), cluster.bump()
    ref = ko.reference(ko.render_node(node))
    cluster.add_event("default", ref, "NodeReady" if ready else "NodeNotReady",
                      f"Node {name} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
                      "Normal", "node-controller")
    if ready:
        cluster.schedule_pending()
        return
    for pod in cluster.pods.values():
        if pod.node == name:
            pod.rv = cluster.bump()
            cluster.add_event(pod.namespace, ko.reference(ko.render_pod(pod, node, time.time())), "NodeNotReady",
                              "Node is not ready", "Warning", "node-controller")


def heal(cluster: Cluster) -> None:
    """Every pod healthy and every node Ready again (deployments keep their replica counts)."""
    for pod in cluster.pods.values():
        if pod.fault:
            pod.fault, pod.rv = None, cluster.bump()
    for name in cluster.nodes:
        set_node_ready(cluster, name, True)
