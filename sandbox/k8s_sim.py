"""Kubernetes API server simulator: the REST paths the official client uses, over a seeded cluster.

Serves ``/version``, discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``), nodes,
namespaces, pods, events and deployments (cluster-wide and namespaced lists with ``labelSelector``,
``fieldSelector``, ``limit``/``continue``; gets), PATCH/PUT of a deployment, and the deployments'
``scale`` subresource (GET, PATCH as json-patch / merge-patch / strategic-merge-patch, PUT).
Writes honour ``?dryRun=All`` (validated, answered, nothing stored) and resourceVersion (a stale one
-> 409 Conflict); every change bumps resourceVersion. Failures are ``Status`` objects: 401 for a
missing or wrong bearer token, 404 for unknown objects, 409, 415, 422. See `sandbox/k8s_cluster.py`
for the seeded cluster (3 nodes, one with 4 GPUs; namespaces hulk-prod, hulk-staging, ml, ...).

``control(action, body)`` actions:

- ``deployment_short`` {namespace, name, count=1}: that many pods fail readiness (available < desired)
- ``crashloop_pod`` {namespace, pod | deployment}: a pod goes into CrashLoopBackOff
- ``node_not_ready`` / ``node_ready`` {name}: the node's Ready condition goes Unknown / True
- ``warning_event`` {namespace="default", reason, message, kind="Pod", name}: adds a Warning event
- ``scale`` {namespace, name, replicas}: sets spec.replicas (as the scale subresource would)
- ``set_token`` {token}: the bearer token accepted from now on (null: no authentication)
- ``set_ready_delay`` {seconds}: how long new pods take to become ready (default 0)
- ``put_service`` / ``delete_service`` / ``put_secret``: Services and Secrets (sandbox/k8s_services.py)
- ``heal`` {}: every pod healthy and every node Ready again
- ``state`` {}: returns {"<ns>/<name>": {"desired": n, "available": n}} for every deployment

Standalone: ``python -m sandbox.k8s_sim --port 6443 [--token T]`` prints its URL and token.
"""

from __future__ import annotations

import argparse
import hmac
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from sandbox import k8s_objects as ko
from sandbox import k8s_services as services
from sandbox import k8s_updates as updates
from sandbox.k8s_cluster import ApiError, Cluster, not_found
from sandbox.k8s_listing import paginate, select
from sandbox.k8s_patch import PATCH_TYPES, PatchError, apply_patch
from sandbox.simbase import HttpSimulator

DEFAULT_TOKEN = "hulk-sim-token"  # noqa: S105 - a simulator's well-known test token
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
Handler = Callable[[web.Request], Any]


class KubernetesSimulator(HttpSimulator):
    name = "kubernetes"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, token: str | None = DEFAULT_TOKEN,
                 ready_delay_s: float = 0.0) -> None:
        super().__init__(host, port)
        self.token = token
        self.cluster = Cluster(ready_delay_s=ready_delay_s)
        self.catalog = services.ServiceCatalog(self.cluster)  # Services and Secrets (sandbox/k8s_services.py)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- routes -------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._api_middleware)
        add = app.router.add_route
        for path in PUBLIC_PATHS:
            add("GET", path, _static("ok"))
        # the client asks for these with a trailing slash (/version/), kubectl without
        for path, handler in [("/version", _static(ko.K8S_VERSION)), ("/api", self._api_versions),
                              *((p, _static(d)) for p, d in DISCOVERY.items())]:
            add("GET", path, handler)
            add("GET", path + "/", handler)
        add("GET", "/api/v1/nodes", self._lister("NodeList", "v1", lambda _ns: self.cluster.node_items()))
        add("GET", "/api/v1/nodes/{name}", self._getter("nodes", lambda _ns: self.cluster.node_items()))
        add("GET", "/api/v1/namespaces", self._lister("NamespaceList", "v1",
                                                      lambda _ns: self.cluster.namespace_items()))
        add("GET", "/api/v1/namespaces/{name}", self._getter("namespaces", lambda _ns: self.cluster.namespace_items()))
        for prefix in ("/api/v1", "/api/v1/namespaces/{ns}"):
            add("GET", f"{prefix}/pods", self._lister("PodList", "v1", self.cluster.pod_items))
            add("GET", f"{prefix}/events", self._lister("EventList", "v1", self.cluster.event_items))
        add("GET", "/api/v1/namespaces/{ns}/pods/{name}", self._getter("pods", self.cluster.pod_items))
        for prefix in ("/apis/apps/v1", "/apis/apps/v1/namespaces/{ns}"):
            add("GET", f"{prefix}/deployments", self._lister("DeploymentList", "apps/v1",
                                                             self.cluster.deployment_items))
        deployment = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"
        add("GET", deployment, self._deployment_get)
        add("PATCH", deployment, self._deployment_write)
        add("PUT", deployment, self._deployment_write)
        add("GET", deployment + "/scale", self._scale_get)
        add("PATCH", deployment + "/scale", self._scale_write)
        add("PUT", deployment + "/scale", self._scale_write)
        services.add_routes(app, self.catalog, self.lock)

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS and not self._authorized(request):
            return _json(ko.status(401, "Unauthorized", "Unauthorized"), 401)
        await request.read()  # the body is read (and cached) before the state's lock is taken
        try:
            if services.is_watch(request):  # a stream: it takes the lock for each look itself
                return await handler(request)
            with self.lock:
                return await handler(request)
        except ApiError as exc:
            return _json(exc.body(), exc.code)

    def _authorized(self, request: web.Request) -> bool:
        token = self.token
        if token is None:
            return True
        sent = request.headers.get("Authorization", "")
        scheme, _, value = sent.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


    async def _api_versions(self, _request: web.Request) -> web.Response:
        return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]})

    def _lister(self, kind: str, api_version: str, items: Callable[[str | None], list[dict[str, Any]]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            found = select(items(request.match_info.get("ns")), request.query)
            page, cont, remaining = paginate(found, request.query, self.cluster.rv)
            return _json(ko.listing(kind, api_version, page, str(self.cluster.rv), cont, remaining))

        return handle

    def _getter(self, resource: str, items: Callable[[str | None], list[dict[str, Any]]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            for item in items(request.match_info.get("ns")):
                if item["metadata"]["name"] == name:
                    return _json(item)
            raise not_found(resource, name)

        return handle

    # -- deployments and their scale subresource ----------------------------------------------
    async def _deployment_get(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        return _json(self.cluster.render_deployment(ns, name))

    async def _deployment_write(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        current = self.cluster.render_deployment(ns, name)
        new = await self._new_object(request, current)
        return _json(updates.update_deployment(self.cluster, ns, name, new, _dry_run(request)))

    async def _scale_get(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        return _json(ko.scale_of(self.cluster.render_deployment(ns, name)))

    async def _scale_write(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        current = ko.scale_of(self.cluster.render_deployment(ns, name))
        new = await self._new_object(request, current)
        return _json(updates.update_scale(self.cluster, ns, name, new, _dry_run(request)))

    @staticmethod
    async def _new_object(request: web.Request, current: dict[str, Any]) -> dict[str, Any]:
        """The object a PUT sends, or the current object with a PATCH applied."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {exc}") from None
        if request.method == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the request body must be a JSON object")
            return body
        if request.content_type not in PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           f"accepted media types include: {', '.join(PATCH_TYPES)}")
        try:
            new = apply_patch(current, body, request.content_type)
        except PatchError as exc:
            code, reason = (422, "Invalid") if "test" in str(exc) else (400, "BadRequest")
            raise ApiError(code, reason, f"the server rejected our request due to an error in our request: {exc}")\
                from None
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the patched object is not a JSON object")
        return new

    # -- control ------------------------------------------------------------------------------
    def control(self, action: str, body: dict[str, Any]) -> Any:
        with self.lock:
            return self._control(action, body)

    def _control(self, action: str, body: dict[str, Any]) -> Any:
        c = self.cluster
        if action == "deployment_short":
            return updates.make_short(c, body["namespace"], body["name"], int(body.get("count", 1)))
        if action == "crashloop_pod":
            return updates.crashloop(c, body["namespace"], body.get("pod"), body.get("deployment"))
        if action in ("node_not_ready", "node_ready"):
            return updates.set_node_ready(c, body["name"], action == "node_ready")
        if action == "warning_event":
            return self._warning_event(body)
        if action == "scale":
            scale = {"metadata": {}, "spec": {"replicas": int(body["replicas"])}}
            return updates.update_scale(c, body["namespace"], body["name"], scale, dry_run=False)
        if action in ("put_service", "delete_service", "put_secret"):
            return services.control(self.catalog, action, body)
        if action == "set_token":
            self.token = body.get("token")
            return None
        if action == "set_ready_delay":
            c.ready_delay_s = float(body["seconds"])
            return None
        if action == "heal":
            return updates.heal(c)
        if action == "state":
            return {f"{d['metadata']['namespace']}/{d['metadata']['name']}": {
                "desired": d["spec"].get("replicas", 1), "available": d["status"].get("availableReplicas", 0)}
                for d in c.deployment_items(None)}
        raise KeyError(action)

    def _warning_event(self, body: dict[str, Any]) -> dict[str, Any]:
        ns, kind, name = body.get("namespace", "default"), body.get("kind", "Pod"), body["name"]
        involved: dict[str, Any] = {"kind": kind, "name": name, "namespace": ns,
                                    "apiVersion": "apps/v1" if kind == "Deployment" else "v1"}
        source = {"Pod": self.cluster.pod_items, "Deployment": self.cluster.deployment_items}.get(kind)
        for item in source(ns) if source else []:
            if item["metadata"]["name"] == name:
                involved = ko.reference(item)
        return self.cluster.add_event(ns, involved, body.get("reason", "Warning"), body.get("message", ""),
                                      "Warning", body.get("component", "kubelet"))


def _json(data: Any, code: int = 200) -> web.Response:
    if isinstance(data, str):
        return web.Response(text=data, status=code)
    return web.Response(body=orjson.dumps(data), status=code, content_type="application/json")


def _static(data: Any) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        return _json(data)

    return handle


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise ApiError(400, "BadRequest", f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _resource(name: str, kind: str, namespaced: bool, verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "singularName": "" if "/" in name else kind.lower(), "namespaced": namespaced,
            "kind": kind, "verbs": verbs, **extra}


_READ = ["get", "list"]
DISCOVERY: dict[str, dict[str, Any]] = {
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in ("apps", "autoscaling")]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        _resource("namespaces", "Namespace", False, _READ, shortNames=["ns"]),
        _resource("nodes", "Node", False, _READ, shortNames=["no"]),
        _resource("pods", "Pod", True, _READ, shortNames=["po"], categories=["all"]),
        _resource("events", "Event", True, _READ, shortNames=["ev"]),
        _resource("services", "Service", True, [*_READ, "watch"], shortNames=["svc"], categories=["all"]),
        _resource("secrets", "Secret", True, ["get"])]},
    "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        _resource("deployments", "Deployment", True, [*_READ, "patch", "update"], shortNames=["deploy"],
                  categories=["all"]),
        _resource("deployments/scale", "Scale", True, ["get", "patch", "update"], group="autoscaling", version="v1")]},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.k8s_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token to accept ('' for none)")
    parser.add_argument("--ready-delay", type=float, default=0.0, help="seconds new pods take to become ready")
    args = parser.parse_args(argv)
    sim = KubernetesSimulator(args.host, args.port, token=args.token or None, ready_delay_s=args.ready_delay)
    return sim.serve_forever(lambda: f"kubernetes simulator at {sim.url} (token: {sim.token or 'none'})")


if __name__ == "__main__":
    raise SystemExit(main())
