"""A Qdrant REST API simulator: enough of Qdrant 1.19 for qdrant-client to work unmodified.

Endpoints: ``GET /`` (title, version, commit), ``/healthz``, ``/livez``, ``/readyz`` (plain text,
as Qdrant answers them), ``GET /collections``, ``GET|PUT|DELETE /collections/{name}``,
``GET /collections/{name}/exists``, ``PUT /collections/{name}/points`` (upsert),
``POST /collections/{name}/points/count``, ``GET /cluster``, ``GET /telemetry``. JSON answers
use Qdrant's envelope ``{"result": ..., "status": "ok", "time": s}``; errors
``{"status": {"error": "..."}, "time": s}``.

API keys work as in Qdrant: when a key is required, every path except ``/``, ``/healthz``,
``/livez`` and ``/readyz`` needs an ``api-key`` header (or ``Authorization: Bearer``). No key ->
401 "Must provide an API key or an Authorization bearer token"; a wrong key -> 401 "Invalid API
key or JWT"; the read-only key on a write -> 403.

Seeded collections: ``docs-embeddings`` (1.2 M points, 768-dim), ``images-clip`` (356 k, 512-dim),
``chat-memory`` (48 k, 1536-dim), all green; single node (cluster disabled); ready.

``control(action, body)`` actions:

- ``set_status``      ``{"collection": name, "status": "green|yellow|grey|red", "error"?: text}``
- ``set_points``      ``{"collection": name, "points": n, "indexed"?: n, "segments"?: n}``
- ``add_collection``  ``{"name": name, "vector_size"?: 384, "distance"?: "Cosine", "points"?: n}``
- ``remove_collection`` ``{"name": name}``
- ``require_api_key`` ``{"key": text or null, "read_only_key"?: text}`` (null key: open again)
- ``set_ready``       ``{"ready": bool}`` (False: /readyz answers 503 "some shards are not ready")
- ``set_cluster``     ``{"peers": n, "pending_operations"?: n}`` (0 peers: cluster disabled)

Standalone: ``python -m sandbox.qdrant_sim --port 6333`` prints its URL and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox import qdrant_data as data
from sandbox.simbase import HttpSimulator

OPEN_PATHS = ("/", "/healthz", "/livez", "/readyz")
READ_ONLY_POSTS = ("/points/count", "/points/search", "/points/scroll", "/points/query")
Handler = Callable[[web.Request], Any]


def _ok(result: Any, started: float) -> web.Response:
    return web.json_response({"result": result, "status": "ok", "time": round(time.perf_counter() - started, 6)})


def _error(status: int, message: str, started: float) -> web.Response:
    body = {"status": {"error": message}, "time": round(time.perf_counter() - started, 6)}
    return web.json_response(body, status=status)


def _not_found(name: str, started: float) -> web.Response:
    return _error(404, f"Not found: Collection `{name}` doesn't exist!", started)


class QdrantSimulator(HttpSimulator):
    name = "qdrant"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port)
        self.collections = data.seed_collections()
        self.api_key: str | None = None
        self.read_only_key: str | None = None
        self.ready = True
        self.peers = 0
        self.pending_operations = 0
        self.started_at = datetime.now(UTC)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- domain states ------------------------------------------------------------------------
    def control(self, action: str, body: dict[str, Any]) -> Any:
        actions: dict[str, Callable[[dict[str, Any]], Any]] = {
            "set_status": self._set_status,
            "set_points": self._set_points,
            "add_collection": self._add_collection,
            "remove_collection": self._remove_collection,
            "require_api_key": self._require_api_key,
            "set_ready": self._set_ready,
            "set_cluster": self._set_cluster,
        }
        if action not in actions:
            raise KeyError(action)
        with self.lock:
            return actions[action](body)

    def _collection(self, name: Any) -> data.SimCollection:
        if name not in self.collections:
            raise ValueError(f"no collection {name!r} (have: {', '.join(self.collections) or 'none'})")
        return self.collections[name]

    def _set_status(self, body: dict[str, Any]) -> dict[str, Any]:
        self._collection(body.get("collection")).set_status(body["status"], body.get("error"))
        return {"collection": body["collection"], "status": body["status"]}

    def _set_points(self, body: dict[str, Any]) -> dict[str, Any]:
        coll = self._collection(body.get("collection"))
        coll.set_points(body["points"], body.get("indexed"), body.get("segments"))
        return {"collection": coll.name, "points": coll.points, "indexed": coll.indexed}

    def _add_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body["name"])
        coll = data.SimCollection(name, vector_size=int(body.get("vector_size", 384)),
                                  distance=str(body.get("distance", "Cosine")))
        coll.set_points(int(body.get("points", 0)))
        self.collections[name] = coll
        return {"name": name, "points": coll.points}

    def _remove_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        removed = self.collections.pop(str(body["name"]), None)
        return {"name": body["name"], "removed": removed is not None}

    def _require_api_key(self, body: dict[str, Any]) -> dict[str, Any]:
        self.api_key = body.get("key") or None
        self.read_only_key = body.get("read_only_key") or None
        return {"required": self.api_key is not None or self.read_only_key is not None}

    def _set_ready(self, body: dict[str, Any]) -> dict[str, Any]:
        self.ready = bool(body.get("ready", True))
        return {"ready": self.ready}

    def _set_cluster(self, body: dict[str, Any]) -> dict[str, Any]:
        self.peers = max(0, int(body.get("peers", 0)))
        self.pending_operations = max(0, int(body.get("pending_operations", 0)))
        return {"enabled": self.peers > 0, "peers": self.peers}

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._auth_middleware)
        app.router.add_get("/", self._root)
        for path in ("/healthz", "/livez"):
            app.router.add_get(path, self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/collections", self._list)
        app.router.add_get("/collections/{name}", self._get)
        app.router.add_get("/collections/{name}/exists", self._exists)
        app.router.add_put("/collections/{name}", self._create)
        app.router.add_delete("/collections/{name}", self._delete)
        app.router.add_put("/collections/{name}/points", self._upsert)
        app.router.add_post("/collections/{name}/points/count", self._count)
        app.router.add_get("/cluster", self._cluster)
        app.router.add_get("/telemetry", self._telemetry)

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self.lock:
            rw_key, ro_key = self.api_key, self.read_only_key
        if (rw_key is None and ro_key is None) or request.path in OPEN_PATHS:
            return await handler(request)
        bearer = request.headers.get("Authorization", "")
        key = request.headers.get("api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
        if key is None:
            return web.Response(status=401, text="Must provide an API key or an Authorization bearer token")
        if rw_key is not None and hmac.compare_digest(key, rw_key):
            return await handler(request)
        if ro_key is not None and hmac.compare_digest(key, ro_key):
            if request.method == "GET" or (request.method == "POST" and request.path.endswith(READ_ONLY_POSTS)):
                return await handler(request)
            return _error(403, "Forbidden: Write access denied: read-only API key", time.perf_counter())
        return web.Response(status=401, text="Invalid API key or JWT")

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response({"title": "qdrant - vector search engine", "version": data.VERSION,
                                  "commit": data.COMMIT})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="healthz check passed", content_type="text/plain")

    async def _readyz(self, request: web.Request) -> web.Response:
        with self.lock:
            ready = self.ready
        if ready:
            return web.Response(text="all shards are ready", content_type="text/plain")
        return web.Response(status=503, text="some shards are not ready", content_type="text/plain")

    async def _list(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        with self.lock:
            names = list(self.collections)
        return _ok({"collections": [{"name": n} for n in names]}, started)

    async def _get(self, request: web.Request) -> web.Response:
        started, name = time.perf_counter(), request.match_info["name"]
        with self.lock:
            coll = self.collections.get(name)
            info = coll.info() if coll else None
        return _ok(info, started) if info else _not_found(name, started)

    async def _exists(self, request: web.Request) -> web.Response:
        started, name = time.perf_counter(), request.match_info["name"]
        with self.lock:
            return _ok({"exists": name in self.collections}, started)

    async def _create(self, request: web.Request) -> web.Response:
        started, name = time.perf_counter(), request.match_info["name"]
        try:
            coll = data.collection_from_request(name, await request.json())
        except ValueError as exc:
            return _error(400, str(exc), started)
        with self.lock:
            if name in self.collections:
                return _error(400, f"Wrong input: Collection `{name}` already exists!", started)
            self.collections[name] = coll
        return _ok(True, started)

    async def _delete(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        with self.lock:
            removed = self.collections.pop(request.match_info["name"], None)
        return _ok(removed is not None, started)

    async def _upsert(self, request: web.Request) -> web.Response:
        started, name = time.perf_counter(), request.match_info["name"]
        body = await request.json()
        ids, vectors = _points_of(body)
        with self.lock:
            coll = self.collections.get(name)
            if coll is None:
                return _not_found(name, started)
            for vector in vectors:
                if isinstance(vector, list) and len(vector) != coll.vector_size:
                    return _error(400, f"Wrong input: Vector dimension error: expected dim: {coll.vector_size}, "
                                       f"got {len(vector)}", started)
            new = set(ids) - coll.point_ids  # an upsert of an existing id replaces the point
            coll.point_ids.update(new)
            coll.points += len(new)  # new points land in an appendable segment: not indexed yet
            operation_id = len(coll.point_ids)
        return _ok({"operation_id": operation_id, "status": "completed"}, started)

    async def _count(self, request: web.Request) -> web.Response:
        started, name = time.perf_counter(), request.match_info["name"]
        with self.lock:
            coll = self.collections.get(name)
            count = coll.points if coll else None
        return _ok({"count": count}, started) if count is not None else _not_found(name, started)

    async def _cluster(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        with self.lock:
            return _ok(data.cluster_status(self.peers, self.pending_operations), started)

    async def _telemetry(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        with self.lock:
            return _ok(data.telemetry(self.started_at, len(self.collections)), started)


def _points_of(body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Ids and vectors of an upsert body, list form ``{"points": [...]}`` or batch form ``{"batch": {...}}``."""
    if "batch" in body:
        batch = body["batch"]
        vectors = batch.get("vectors")
        return list(batch.get("ids", [])), list(vectors) if isinstance(vectors, list) else []
    points = body.get("points", [])
    return [p.get("id") for p in points], [p.get("vector") for p in points]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Qdrant REST API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--api-key", default=None, help="require this api-key header")
    args = parser.parse_args(argv)
    sim = QdrantSimulator(args.host, args.port)
    def banner() -> str:
        if args.api_key:
            sim.control("require_api_key", {"key": args.api_key})
        return f"qdrant simulator listening on {sim.url}"

    return sim.serve_forever(banner)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
