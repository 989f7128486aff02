"""What every protocol simulator shares: a server on loopback in its own thread, and faults.

A simulator runs its asyncio server on a private event loop in a daemon thread, so tests drive it
synchronously while the real client library talks to it over TCP. Faults are staged through
`set_fault()`; domain states (a red collection, a deployment short of replicas, ...) through
`control(action, body)`. `sandbox/control.py` exposes both over HTTP for the demo:

- ``down``:  the listener is closed (connection refused) until the fault is cleared
- ``stall``: connections are accepted and never answered
- ``slow``:  every response is delayed by ``delay_s``
- ``None``:  healthy again

Subclasses implement `_start_server(host, port)` returning an object with `close()` /
`wait_closed()` (asyncio.Server or an aiohttp runner wrapper) and keep their domain state behind
`self.lock` (the state is touched from the test thread and the server thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
FAULTS = ("down", "stall", "slow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Simulator:
    name = "simulator"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.fault: str | None = None
        self.delay_s = 0.0
        self.lock = threading.RLock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"sim-{self.name}", daemon=True)
        self._server: Any = None
        self._stalled: list[socket.socket] = []
        self._stall_sock: socket.socket | None = None
        self._stall_task: asyncio.Task[None] | None = None
        self.ssl_context: ssl.SSLContext | None = None  # set before start(): the listener speaks TLS

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Simulator:
        self._thread.start()
        self.call(self._open())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self._close(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def serve_forever(self, banner: Callable[[], str]) -> int:
        """Standalone mode (`python -m sandbox.<name>_sim`): start, print the banner, run until SIGTERM/SIGINT."""
        import signal

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # before the banner: a caller may stop us right away
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            print(banner(), flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
        return 0

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def call(self, coro: Awaitable[T], timeout: float = 10) -> T:
        """Run a coroutine on the simulator's loop from another thread."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(timeout)

    # -- faults -------------------------------------------------------------------------------
    def set_fault(self, mode: str | None, delay_s: float = 0.0) -> None:
        if mode is not None and mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r} (known: {', '.join(FAULTS)} or None)")
        self.call(self._apply_fault(mode, delay_s))

    async def _apply_fault(self, mode: str | None, delay_s: float) -> None:
        previous = self.fault
        self.fault, self.delay_s = mode, (delay_s if mode == "slow" else 0.0)
        if previous in ("down", "stall") and mode not in ("down", "stall"):
            await self._close_listener()
            await self._open()
        elif mode in ("down", "stall") and previous not in ("down", "stall"):
            await self._close_listener()
            if mode == "stall":
                await self._open_stall()
        elif mode != previous and {mode, previous} == {"down", "stall"}:
            await self._close_listener()
            if mode == "stall":
                await self._open_stall()

    async def maybe_delay(self) -> None:
        """Handlers await this before answering (the ``slow`` fault)."""
        if self.fault == "slow" and self.delay_s > 0:
            await asyncio.sleep(self.delay_s)

    # -- server plumbing ----------------------------------------------------------------------
    async def _open(self) -> None:
        self._server = await self._start_server(self.host, self.port)

    async def _close(self) -> None:
        await self._close_listener()

    async def _close_listener(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await _close_server(server)
        if self._stall_task is not None:
            self._stall_task.cancel()
            self._stall_task = None
        if self._stall_sock is not None:
            self._stall_sock.close()
            self._stall_sock = None
        for conn in self._stalled:
            conn.close()
        self._stalled.clear()

    async def _open_stall(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._stall_sock = sock

        async def accept_forever() -> None:
            loop = asyncio.get_running_loop()
            while True:
                conn, _ = await loop.sock_accept(sock)
                self._stalled.append(conn)  # held open, never read, never answered

        self._stall_task = asyncio.get_running_loop().create_task(accept_forever())

    def control(self, action: str, body: dict[str, Any]) -> Any:
        """Stage a domain state (named by the subclass's docstring); unknown action -> KeyError."""
        raise KeyError(action)

    async def _start_server(self, host: str, port: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


async def _close_server(server: Any) -> None:
    if isinstance(server, web.AppRunner):
        await server.cleanup()
        return
    server.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await server.wait_closed()


class HttpSimulator(Simulator):
    """A simulator speaking HTTP through aiohttp; subclasses add routes in `routes()`."""

    def routes(self, app: web.Application) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _start_server(self, host: str, port: int) -> web.AppRunner:
        app = web.Application(middlewares=[self._fault_middleware])
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=self.ssl_context)
        await site.start()
        return runner

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        await self.maybe_delay()
        return await handler(request)
