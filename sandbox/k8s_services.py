"""Services and Secrets of the simulated Kubernetes API server, as the real API serves them.

    GET /api/v1/services                                  ServiceList, every namespace
    GET /api/v1/namespaces/{ns}/services                  ServiceList of one namespace
    GET /api/v1/namespaces/{ns}/services/{name}           one Service
    GET ...services?watch=1&resourceVersion=N             watch: a stream of {"type", "object"} JSON lines
                                                          (ADDED / MODIFIED / DELETED) after N, until
                                                          timeoutSeconds (default 30 s) or the client leaves
    GET /api/v1/namespaces/{ns}/secrets/{name}            one Secret, `data` base64-encoded

Lists take labelSelector, fieldSelector, limit/continue like the other lists (sandbox/k8s_listing.py). Changes
come from `control()` actions of the simulator: ``put_service`` {namespace, name, annotations={}, labels={},
cluster_ip="10.96.0.10", ports=[{"name", "port"}]} creates or replaces one, ``delete_service`` {namespace, name},
``put_secret`` {namespace, name, data={key: plain text}} (stored base64-encoded, as the API does).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import threading
import time
from typing import Any

import orjson
from aiohttp import web

from sandbox import k8s_objects as ko
from sandbox.k8s_cluster import ApiError, Cluster, not_found
from sandbox.k8s_listing import paginate, select

WATCH_POLL_S = 0.05  # how often a watch looks for new changes (the state lives behind the simulator's lock)


class ServiceCatalog:
    """Services and Secrets with a change log (for watches); guarded by the simulator's lock."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.changes: list[tuple[int, str, dict[str, Any]]] = []  # (resourceVersion, type, object)

    def put_service(self, ns: str, name: str, annotations: dict[str, str] | None = None,
                    labels: dict[str, str] | None = None, cluster_ip: str = "10.96.0.10",
                    ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        old = self.services.get((ns, name))
        rv = self.cluster.bump()
        uid = old["metadata"]["uid"] if old else ko.new_uid()
        created = time.time()
        obj = {"kind": "Service", "apiVersion": "v1",
               "metadata": ko.meta(name, uid, rv, created, ns, labels, annotations=dict(annotations or {})),
               "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                        "ports": [{"protocol": "TCP", "targetPort": p["port"], **p} for p in (ports or [])]},
               "status": {"loadBalancer": {}}}
        self.services[(ns, name)] = obj
        self.changes.append((int(rv), "MODIFIED" if old else "ADDED", obj))
        return obj

    def delete_service(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.services.pop((ns, name), None)
        if obj is None:
            raise not_found("services", name)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self.cluster.bump()
        self.changes.append((int(gone["metadata"]["resourceVersion"]), "DELETED", gone))
        return gone

    def put_secret(self, ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
        rv = self.cluster.bump()
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        obj = {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
               "metadata": ko.meta(name, ko.new_uid(), rv, time.time(), ns), "data": encoded}
        self.secrets[(ns, name)] = obj
        return obj

    def service_items(self, ns: str | None) -> list[dict[str, Any]]:
        return [s for (n, _), s in sorted(self.services.items()) if ns is None or n == ns]


def add_routes(app: web.Application, catalog: ServiceCatalog, lock: threading.RLock) -> None:
    add = app.router.add_route
    for prefix in ("/api/v1", "/api/v1/namespaces/{ns}"):
        add("GET", f"{prefix}/services", _service_list(catalog, lock))
    add("GET", "/api/v1/namespaces/{ns}/services/{name}", _getter(catalog.services, "services"))
    add("GET", "/api/v1/namespaces/{ns}/secrets/{name}", _getter(catalog.secrets, "secrets"))


def is_watch(request: web.Request) -> bool:
    """A watch request streams without holding the simulator's lock (it takes it for each look)."""
    return request.query.get("watch", "").lower() in ("1", "true")


def _service_list(catalog: ServiceCatalog, lock: threading.RLock):
    async def handle(request: web.Request) -> web.StreamResponse:
        ns = request.match_info.get("ns")
        if is_watch(request):
            return await _watch(request, catalog, lock, ns)
        found = select(catalog.service_items(ns), request.query)
        page, cont, remaining = paginate(found, request.query, catalog.cluster.rv)
        return _json(ko.listing("ServiceList", "v1", page, str(catalog.cluster.rv), cont, remaining))

    return handle


async def _watch(request: web.Request, catalog: ServiceCatalog, lock: threading.RLock,
                 ns: str | None) -> web.StreamResponse:
    try:
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 30)
    except ValueError:
        raise ApiError(400, "BadRequest", "resourceVersion and timeoutSeconds must be numbers") from None
    with lock:
        if not since:  # no resourceVersion: the current objects first, as ADDED
            pending = [(0, "ADDED", s) for s in catalog.service_items(ns)]
            since = catalog.cluster.rv
        else:
            pending = []
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    await response.prepare(request)
    deadline = time.monotonic() + timeout
    while True:
        for _rv, kind, obj in pending:
            if select([obj], request.query):
                await response.write(orjson.dumps({"type": kind, "object": obj}) + b"\n")
        if time.monotonic() >= deadline or request.transport is None or request.transport.is_closing():
            break  # timed out, or the client went away (a watch it stopped)
        await asyncio.sleep(WATCH_POLL_S)
        with lock:
            pending = [(rv, kind, obj) for rv, kind, obj in catalog.changes
                       if rv > since and (ns is None or obj["metadata"]["namespace"] == ns)]
            since = max([since, *(rv for rv, _k, _o in pending)])
    await response.write_eof()
    return response


def _getter(table: dict[tuple[str, str], dict[str, Any]], resource: str):
    """GET of one namespaced object (a Service or a Secret) by its namespace and name."""
    async def handle(request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        found = table.get(key)
        if found is None:
            raise not_found(resource, key[1])
        return _json(found)

    return handle


def control(catalog: ServiceCatalog, action: str, body: dict[str, Any]) -> Any:
    if action == "put_service":
        return catalog.put_service(body["namespace"], body["name"], body.get("annotations"), body.get("labels"),
                                   body.get("cluster_ip", "10.96.0.10"), body.get("ports"))
    if action == "delete_service":
        return catalog.delete_service(body["namespace"], body["name"])
    if action == "put_secret":
        return catalog.put_secret(body["namespace"], body["name"], body.get("data", {}))
    raise KeyError(action)


def _json(data: Any, code: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=code, content_type="application/json")
