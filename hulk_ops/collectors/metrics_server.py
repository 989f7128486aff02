"""The collector's HTTP endpoint, served from a thread: `/metrics` and `/healthz`.

`/metrics` is prometheus_client's exposition; being served from its own thread, it answers even
when the event loop is stuck, so it cannot be a liveness probe. `/healthz` is: it answers 503 when
the scheduler's once-a-second tick (`Scheduler.ticked_at`) is older than `STUCK_S`, i.e. the loop
has not run for that long (a blocking call, a runaway coroutine). Before the first tick it is 200
(`starting`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app

STUCK_S = 10.0


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def liveness(ticked_at: Callable[[], float | None], stuck_s: float | None = None) -> tuple[bool, dict[str, Any]]:
    last = ticked_at()
    if last is None:
        return True, {"status": "starting"}
    age = time.monotonic() - last
    limit = STUCK_S if stuck_s is None else stuck_s
    if age > limit:
        return False, {"status": "stuck", "loop_idle_s": round(age, 1), "limit_s": limit}
    return True, {"status": "ok", "loop_idle_s": round(age, 3)}


def serve(registry: CollectorRegistry, host: str, port: int,
          ticked_at: Callable[[], float | None]) -> tuple[WSGIServer, threading.Thread]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, body = liveness(ticked_at)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [orjson.dumps(body)]
        return metrics(environ, start_response)

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("MetricsServer", (_Server,), {"address_family": family})
    httpd: WSGIServer = make_server(host, port, app, server_class, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="hulk-ops-metrics", daemon=True)
    thread.start()
    return httpd, thread
