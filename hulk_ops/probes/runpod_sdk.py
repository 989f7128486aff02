"""Using the official `runpod` SDK for several targets at once, although its settings are global.

The SDK keeps three settings at process level; this module makes each call use its target's own:

- **API key** (``runpod.api_key``): never set. Every call passes the key:
  ``run_graphql_query(query, api_key=...)`` and ``RunPodClient(api_key=...)`` take it explicitly.
- **Serverless base** (``runpod.endpoint_url_base``, read from ``RUNPOD_ENDPOINT_BASE_URL`` once at
  import): ``RunPodClient`` copies it into its own ``endpoint_url_base`` attribute when built, so
  `serverless_client()` overwrites that attribute on the target's own client. No global is touched.
- **GraphQL base** (``RUNPOD_API_BASE_URL``): ``run_graphql_query`` reads it from ``os.environ`` at
  every call and offers no parameter. `graphql()` therefore sets it through `ApiBaseGate`: calls
  for the same base run concurrently (the usual case: every target uses api.runpod.io); a call
  for another base waits until those have returned, at most its timeout, and callers that
  wait are served first come, first served. The SDK's own request
  timeout is a fixed 30 s, so a stalled API can hold its base (and make targets with another base
  wait) for up to 30 s after our probe has already reported it down; a target never waits longer
  than its own timeout. The variable's previous value is restored when no call needs it.

Writers (e.g. a guarded GPU launch) should go through `graphql()` too: ``runpod.create_pod``,
``stop_pod`` and ``terminate_pod`` take no key and read ``runpod.api_key``, so send the SDK's own
mutation text instead, e.g. ``graphql(runpod.api.mutations.pods.generate_pod_stop_mutation(pod_id),
key, base, timeout)``.

The SDK is synchronous (requests), so `in_thread()` runs a call in a daemon thread of its own.
Not `asyncio.to_thread`: a call abandoned at the probe's timeout keeps its thread until the SDK's
30 s request timeout, and the default executor is joined when the event loop closes, so
`hulk-ops probe` against a stalled API would hang for those 30 s after printing its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from requests.adapters import HTTPAdapter
from runpod.api.graphql import run_graphql_query
from runpod.endpoint.runner import Endpoint, RunPodClient

API_BASE_ENV = "RUNPOD_API_BASE_URL"
T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking SDK call in a daemon thread; cancelling the await abandons the thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled at the probe's timeout: nobody waits any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = func(*args)
        except BaseException as exc:  # handed to the awaiting coroutine, which decides
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=f"runpod-sdk-{getattr(func, '__name__', 'call')}", daemon=True).start()
    return await future


class ApiBaseGate:
    """Sets an environment variable for the length of a call; calls needing other values take turns."""

    def __init__(self, variable: str = API_BASE_ENV) -> None:
        self.variable = variable
        self._cond = threading.Condition()
        self._value: str | None = None
        self._users = 0
        self._queue: deque[object] = deque()  # callers waiting for their turn, in arrival order
        self._saved: str | None = None

    @contextmanager
    def use(self, value: str, timeout: float) -> Iterator[None]:
        self._enter(value, timeout)
        try:
            yield
        finally:
            self._leave()

    def _enter(self, value: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            # first come, first served: a newcomer joins a running group for its value only when
            # nobody queues (else a base whose calls keep overlapping, e.g. a stalled one, would
            # starve the others)
            if self._queue or not (self._users == 0 or value == self._value):
                ticket = object()
                self._queue.append(ticket)
                try:
                    while not (self._queue[0] is ticket and (self._users == 0 or value == self._value)):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError(f"waited {timeout:.1f} s for calls to another RunPod API base")
                        self._cond.wait(remaining)
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()  # the next in the queue may go now
            if self._users == 0:
                self._saved = os.environ.get(self.variable)
                self._value = value
                os.environ[self.variable] = value
            self._users += 1

    def _leave(self) -> None:
        with self._cond:
            self._users -= 1
            if self._users == 0:
                if self._saved is None:
                    os.environ.pop(self.variable, None)
                else:
                    os.environ[self.variable] = self._saved
                self._value = None
                self._cond.notify_all()


GATE = ApiBaseGate()


def graphql(query: str, api_key: str, api_base: str, timeout: float) -> tuple[dict[str, Any], float]:
    """Run one GraphQL query with this key against this base: (response JSON, round trip in ms)."""
    with GATE.use(api_base.rstrip("/"), timeout):
        started = time.perf_counter()
        response = run_graphql_query(query, api_key=api_key)
        return response, (time.perf_counter() - started) * 1000


def serverless_client(api_key: str, endpoint_base: str) -> RunPodClient:
    """The SDK's serverless client bound to this key and base, without its hidden retries."""
    client = RunPodClient(api_key=api_key)
    client.endpoint_url_base = endpoint_base.rstrip("/")
    # RunPodClient mounts Retry(total=5, backoff_factor=1) on http:// only: a refused connection would
    # take ~15 s. Retries are the probe's business, inside its timeout.
    for prefix in ("http://", "https://"):
        client.rp_session.mount(prefix, HTTPAdapter(max_retries=0))
    return client


def watched_endpoints(client: RunPodClient, endpoint_ids: list[str]) -> dict[str, Endpoint]:
    """The SDK's `Endpoint` objects for these ids, all sharing the target's client (one session)."""
    endpoints: dict[str, Endpoint] = {}
    for endpoint_id in endpoint_ids:
        endpoint = Endpoint(endpoint_id, api_key=client.api_key)
        endpoint.rp_client.rp_session.close()  # the client it built for itself reads the global base
        endpoint.rp_client = client
        endpoints[endpoint_id] = endpoint
    return endpoints


def endpoint_health(endpoint: Endpoint, timeout: float) -> tuple[dict[str, Any], float]:
    """`Endpoint.health()` (GET {base}/{id}/health): (health JSON, round trip in ms)."""
    started = time.perf_counter()
    health = endpoint.health(timeout=timeout)  # requests takes float seconds
    return health, (time.perf_counter() - started) * 1000
