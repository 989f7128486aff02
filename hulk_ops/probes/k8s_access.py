"""The Kubernetes API calls hulk-ops makes, in one place; the RBAC it needs is derived from them.

The collector (the `kubernetes` probe) only reads; the dashboard's actions service account only
reads and patches the scale subresource of deployments. Each call is named as the official
client names it (`ApiClass.method`); `required_rules()` reads the HTTP method and path the
client itself uses for that call and turns them into (API group, resource, verb). The Helm
chart's Roles are tested against these rules, both ways (tests/unit/test_deploy_helm.py).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

# hulk_ops/probes/kubernetes.py: version, nodes, pods, deployments, Warning events (cluster-wide or per namespace)
COLLECTOR_CALLS: frozenset[str] = frozenset({
    "VersionApi.get_code",
    "CoreV1Api.list_node",
    "CoreV1Api.list_pod_for_all_namespaces",
    "CoreV1Api.list_namespaced_pod",
    "CoreV1Api.list_event_for_all_namespaces",
    "CoreV1Api.list_namespaced_event",
    "AppsV1Api.list_deployment_for_all_namespaces",
    "AppsV1Api.list_namespaced_deployment",
    # hulk_ops/collectors/discovery.py: annotated Services, and the Secrets they name
    "CoreV1Api.list_service_for_all_namespaces",
    "CoreV1Api.list_namespaced_service",
    "CoreV1Api.read_namespaced_secret",
})

# hulk_ops/actions/executors/kubernetes.py: read the deployment (its pod template prices the change), read the current
# scale, patch it (server dry-run first, then for real, carrying the resourceVersion it read)
ACTIONS_CALLS: frozenset[str] = frozenset({
    "AppsV1Api.read_namespaced_deployment",
    "AppsV1Api.read_namespaced_deployment_scale",
    "AppsV1Api.patch_namespaced_deployment_scale",
    "AppsV1Api.patch_namespaced_deployment",  # rollout restart: the pod template's restartedAt annotation
})

_VERBS = {("GET", False): "list", ("GET", True): "get", ("PATCH", True): "patch", ("PUT", True): "update",
          ("POST", False): "create", ("DELETE", True): "delete", ("DELETE", False): "deletecollection"}


@dataclass(frozen=True, order=True)
class Rule:
    group: str  # "" is the core group
    resource: str  # with its subresource: "deployments/scale"
    verb: str


def http_route(call: str) -> tuple[str, str]:
    """(HTTP method, path template) the official client uses for `ApiClass.method`."""
    from kubernetes import client

    cls_name, method = call.split(".")
    serializer = getattr(getattr(client, cls_name), f"_{method}_serialize")
    source = inspect.getsource(serializer)
    found = re.search(r"method='([A-Z]+)',\s*resource_path='([^']+)'", source)
    if not found:
        raise ValueError(f"{call}: no HTTP route found in the kubernetes client")
    return found.group(1), found.group(2)


def rule_for(call: str) -> Rule | None:
    """The RBAC rule a call needs; None for non-resource URLs (/version is readable by everyone)."""
    method, path = http_route(call)
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api":
        group, rest = "", parts[2:]
    elif parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # /namespaces/{namespace}/<resource>...
    resource, item, sub = rest[0], len(rest) > 1, rest[2] if len(rest) > 2 else None
    return Rule(group, f"{resource}/{sub}" if sub else resource, _VERBS[(method, item)])


def required_rules(calls: frozenset[str]) -> set[Rule]:
    return {rule for rule in map(rule_for, calls) if rule is not None}


def api_methods() -> dict[str, str]:
    """Every public method name of the client's API classes -> 'ApiClass.method' (to find calls in code)."""
    from kubernetes import client

    out: dict[str, str] = {}
    for name in dir(client):
        cls = getattr(client, name)
        if name.endswith("Api") and inspect.isclass(cls) and name != "ApiClient":
            for method in vars(cls):
                if f"_{method}_serialize" in vars(cls):  # an API call (not close(), not the variants)
                    out.setdefault(method, f"{name}.{method}")
    return out
