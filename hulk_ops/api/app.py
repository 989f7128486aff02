"""The ASGI app: routes, authentication, rate limit, request log and JSON errors.

Handlers are plain functions run in Starlette's thread pool (the read model is a blocking Redis
client). `/metrics` (no token: request counts by route template and status, no store data) is for
Prometheus. Every answer is JSON; errors are `{"error": {"status", "message"}}`: 400 a bad parameter,
401 no or a wrong token, 404 an unknown target or path, 429 over the rate limit (`Retry-After`),
503 the store cannot be read. Configured secrets are replaced by `***` in every body.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hulk_ops.api import openapi, views
from hulk_ops.api.auth import Authenticator, RateLimiter, Unauthorized
from hulk_ops.core.config import Config
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable, TargetView

log = structlog.get_logger("hulk_ops.api")
Handler = Callable[[ReadModel, Request], Any]


class NotFound(Exception):
    pass


class ApiMetrics:
    """The API's own /metrics: requests by route template (bounded) and status, and their durations."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hulk_ops_api_requests", "API requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.duration = Histogram("hulk_ops_api_request_duration_seconds", "API request time by route", ["route"],
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=self.registry)


class Api:
    def __init__(self, config: Config, model: ReadModel | None = None) -> None:
        self.config = config
        self.metrics = ApiMetrics()
        self.model = model or ReadModel(config)
        self.auth = Authenticator(config)
        self.limiter = RateLimiter(config.api.rate_per_s, config.api.burst)
        self.secrets = sorted({s.encode() for s in config.secrets() if len(s) >= 4}, key=len, reverse=True)

    def json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        raw = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        for secret in self.secrets:
            raw = raw.replace(secret, b"***")
        return Response(raw, status_code=status, media_type="application/json", headers=headers)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return self.json(status, {"error": {"status": status, "message": message}}, headers)

    def route(self, path: str, handler: Handler, public: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await self._answer(handler, request, public)
            took = time.perf_counter() - started
            principal = request.scope.get("hulk_ops.principal", "anonymous" if public else None)
            log.info("api_request", method=request.method, path=request.url.path, status=response.status_code,
                     principal=principal, ms=round(took * 1000, 1))
            self.metrics.requests.labels(path, str(response.status_code)).inc()
            self.metrics.duration.labels(path).observe(took)
            return response

        return Route(path, endpoint)

    async def exposition(self, _request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def _answer(self, handler: Handler, request: Request, public: bool) -> Response:
        client = request.client.host if request.client else "?"
        if not public:
            try:
                principal = await run_in_threadpool(self.auth.authenticate, request.headers.get("authorization"))
            except Unauthorized as exc:
                wait = self.limiter.allow(f"ip:{client}")  # failed tokens cost argon2 time: limit them too
                if wait:
                    return self._limited(wait)
                return self.error(401, str(exc), {"WWW-Authenticate": 'Bearer realm="hulk-ops"'})
            request.scope["hulk_ops.principal"] = principal.name
            wait = self.limiter.allow(f"principal:{principal.name}")
            if wait:
                return self._limited(wait)
        try:
            body = await run_in_threadpool(handler, self.model, request)
        except views.BadParameter as exc:
            return self.error(400, str(exc))
        except NotFound as exc:
            return self.error(404, str(exc))
        except StoreUnavailable as exc:
            return self.error(503, str(exc), {"Retry-After": "5"})  # "cannot read the store at <where>: <error>"
        return self.json(200, body)

    def _limited(self, wait: float) -> Response:
        return self.error(429, f"rate limit: at most {self.config.api.rate_per_s:g} requests per second "
                               f"(bursts of {self.config.api.burst}); retry in {wait:.1f} s",
                          {"Retry-After": str(max(1, math.ceil(wait)))})


def _view(model: ReadModel, name: str) -> TargetView:
    if name not in {t.name for t in model.config.targets}:
        raise NotFound(f"no target named {name!r}")
    (view,) = model.target_views(names=[name])
    return view


def list_targets(model: ReadModel, request: Request) -> dict[str, Any]:
    now = time.time()
    targets = model.target_views(now)
    kind = request.query_params.get("kind")
    status = request.query_params.get("status")
    out = [views.target_summary(v) for v in targets
           if (kind is None or v.kind == kind) and (status is None or v.status == status)]
    return {"targets": out, "freshness": views.freshness(model.freshness(now))}


def get_target(model: ReadModel, request: Request) -> dict[str, Any]:
    return views.target_detail(_view(model, request.path_params["name"]))


def get_history(model: ReadModel, request: Request) -> dict[str, Any]:
    view = _view(model, request.path_params["name"])
    return views.history(model, view, request.query_params.get("window"))


def list_incidents(model: ReadModel, request: Request) -> dict[str, Any]:
    recent = views.parse_limit(request.query_params.get("recent"), 20, 500)
    return views.incidents(model, model.target_views(), recent)


def list_events(model: ReadModel, request: Request) -> dict[str, Any]:
    q = request.query_params
    since = views.parse_since(q.get("since"))
    limit = views.parse_limit(q.get("limit"), 100, 1000)
    target = q.get("target")
    if target is not None:
        _view(model, target)
    events = model.events(limit, target=target, since=since)
    return {"events": [views.event(e) for e in events], "since": views.iso_ts(since), "limit": limit}


def healthz(_model: ReadModel, _request: Request) -> dict[str, Any]:
    return {"status": "ok"}


def schema(_model: ReadModel, _request: Request) -> dict[str, Any]:
    return openapi.document()


def build_app(config: Config, model: ReadModel | None = None) -> Starlette:
    api = Api(config, model)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only (Starlette types it Exception)
        message = f"no such endpoint: {request.method} {request.url.path}" if exc.status_code in (404, 405) \
            else str(exc.detail)
        return api.error(exc.status_code, message)

    routes = [
        api.route("/healthz", healthz, public=True),
        api.route("/api/v1/openapi.json", schema, public=True),
        api.route("/api/v1/targets", list_targets),
        api.route("/api/v1/targets/{name}", get_target),
        api.route("/api/v1/targets/{name}/history", get_history),
        api.route("/api/v1/incidents", list_incidents),
        api.route("/api/v1/events", list_events),
        Route("/metrics", api.exposition),  # Prometheus' scrape: request counts only, no store data
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def serve(config: Config, host: str = "127.0.0.1", port: int = 8502, log_level: str = "info") -> None:
    """Serve until SIGTERM or SIGINT, then return (exit code 0, like the collector)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own re-raises the signal after its graceful stop (the process dies of it: exit 143)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
                        if signal.getsignal(sig) is not signal.SIG_IGN}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    # log_config=None: uvicorn keeps hulk-ops' logging (structlog JSON, secrets masked) instead of its own
    Server(uvicorn.Config(build_app(config), host=host, port=port, log_level=log_level.lower(), access_log=False,
                          server_header=False, proxy_headers=False, log_config=None, lifespan="off")).run()
