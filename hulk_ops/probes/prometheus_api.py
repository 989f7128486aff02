"""An asyncio face on prometheus-api-client's synchronous `PrometheusConnect`.

The client is built on `requests`, so every call runs on a worker thread (like `asyncio.to_thread`,
but not on the loop's shared default executor). Each call gets a daemon thread of its own and each
`PromClient` allows at most `WORKERS` at once: a stalled Prometheus ties up only its own slots
(further calls fail at once with "busy"), never threads other probes need, and a thread still
blocked in a socket read can neither hold up the loop nor the process's exit (executor threads are
joined at exit; daemon threads are not). The caller gives up at its timeout; the thread ends by its
socket timeout, which never exceeds the target's `timeout_s`. The client's own retries are off:
retries are the probe's business, inside its timeout. Used by the prometheus probe and by the
query pull (`hulk_ops/collectors/prometheus_pull.py`).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hulk_ops.core.tls_config import TlsSettings
from hulk_ops.probes import tls as tls_mod

T = TypeVar("T")
WORKERS = 4


class PromQueryError(Exception):
    """Prometheus answered, but not with something we can use (bad PromQL, wrong result type)."""


class PromBusy(Exception):
    """Every worker slot of this client is still held by an earlier call (the server is stalling)."""


class PromClient:
    def __init__(self, url: str, timeout_s: float, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None, tls: TlsSettings | None = None,
                 name: str = "prometheus") -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = headers or {}
        self.auth = auth
        self.tls = tls
        self.session = requests.Session()
        if tls is not None:  # requests' own options: a CA bundle path (or False), and the client certificate
            self.session.verify = (tls.ca_file or True) if tls.verify else False
            if tls.cert_file and tls.key_file:
                self.session.cert = (tls.cert_file, tls.key_file)
        no_retries = Retry(total=0, redirect=0, raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=no_retries))
        self.session.mount("https://", NamedAdapter(tls.server_name if tls else None, max_retries=no_retries))
        self.api = PrometheusConnect(url=self.url, headers=self.headers, auth=auth, session=self.session,
                                     retry=no_retries, timeout=timeout_s)
        if tls is not None and tls.server_name:  # PrometheusConnect mounts a plain adapter on its url: ours again
            self.session.mount(self.url, NamedAdapter(tls.server_name, max_retries=no_retries))
        self.name = name
        self._slots = threading.BoundedSemaphore(WORKERS)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking call on a daemon thread; cancelling the await abandons the thread's result."""
        if not self._slots.acquire(blocking=False):
            raise PromBusy(f"{WORKERS} earlier calls to {self.url} are still waiting for an answer")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def work() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (fn(*args), None)
            except BaseException as exc:  # handed to the awaiting task, which decides
                outcome = (None, exc)
            finally:
                self._slots.release()
            try:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        threading.Thread(target=work, name=f"prom-{self.name}", daemon=True).start()
        return await future

    # -- blocking calls (run them through `call`) ---------------------------------------------
    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET an /api/v1 endpoint the client has no method for; returns the envelope's `data`."""
        # verify given per request, as PrometheusConnect does: otherwise $REQUESTS_CA_BUNDLE replaces the session's
        response = self.session.get(f"{self.url}{path}", params=params, headers=self.headers, auth=self.auth,
                                    timeout=self.timeout_s, verify=self.session.verify)
        if response.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content[:200]!r})")
        return response.json()["data"]

    def query(self, promql: str, timeout_s: float | None = None) -> list[tuple[dict[str, str], float, float]]:
        """Instant query -> [(labels, ts, value)]; a scalar result has empty labels."""
        timeout = min(timeout_s or self.timeout_s, self.timeout_s)
        try:
            result = self.api.custom_query(promql, params={"timeout": f"{timeout:g}"}, timeout=timeout)
        except PrometheusApiClientException as exc:
            raise PromQueryError(_api_error(str(exc))) from exc
        return parse_result(result)

    def peer_cert(self) -> bytes | None:
        """The server certificate (DER), from one handshake of its own: requests keeps no socket to ask once a
        response has been read (the requests themselves verify it)."""
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            return None
        context = tls_mod.reading_context(self.tls)
        return tls_mod.handshake_der_blocking(parts.hostname, parts.port or 443, context,
                                              self.tls.server_name if self.tls else None, self.timeout_s)

    def close(self) -> None:
        self.session.close()


class NamedAdapter(HTTPAdapter):
    """requests' adapter sending and verifying `server_name` instead of the url's host (urllib3's
    server_hostname / assert_hostname pool options)."""

    def __init__(self, server_name: str | None, **kwargs: Any) -> None:
        self.server_name = server_name  # set first: HTTPAdapter.__init__ builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self.server_name:
            kwargs.update(server_hostname=self.server_name, assert_hostname=self.server_name)
        super().init_poolmanager(*args, **kwargs)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller timed out or was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def parse_result(result: Any) -> list[tuple[dict[str, str], float, float]]:
    """`custom_query` hands back `data.result` without its type: a scalar or string is a [ts, "v"] pair,
    an instant vector a list of {metric, value}, a range vector a list of {metric, values}."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        try:
            return [({}, float(result[0]), float(result[1]))]
        except (TypeError, ValueError):
            raise PromQueryError("the query returns a string; pull an instant vector or a scalar") from None
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise PromQueryError(f"unexpected query result: {str(result)[:100]}")
    if any("values" in item for item in result):
        raise PromQueryError("the query returns a range vector; pull an instant vector or a scalar")
    return [(dict(item.get("metric") or {}), float(item["value"][0]), float(item["value"][1])) for item in result]


def _api_error(text: str) -> str:
    """The client's "HTTP Status Code 400 (b'{...,"error":"1:5: parse error: ..."}')" -> the error itself."""
    match = re.search(r"^HTTP Status Code (\d+) \((b['\"].*['\"])\)$", text, re.S)
    if match:
        try:
            body = json.loads(ast.literal_eval(match.group(2)))
            return f"query rejected: {body['error']}"[:300]
        except (ValueError, SyntaxError, KeyError, TypeError):
            return f"HTTP {match.group(1)} from Prometheus"
    return text[:300]
