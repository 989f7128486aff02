"""A fault-injecting TCP proxy for tests: client -> proxy (loopback) -> one real upstream.

The proxy runs its asyncio server on a private event loop in a daemon thread (like the protocol
simulators in `sandbox/simbase.py`), so neither a busy test loop delays it nor it the test loop.
Faults are switched at run time with `set(mode, ...)`, which returns once the fault is in force:

- ``pass``:     bytes are forwarded unchanged (the default)
- ``latency``:  every chunk the upstream sends is delivered ``delay_s`` later (order kept, chunks not
                serialised: a round trip gets ``delay_s`` longer, like netem's delay)
- ``stall``:    connections are accepted (new ones too) and nothing is forwarded either way; what
                was held is delivered when the stall ends
- ``reset``:    each connection forwards at most ``after_bytes`` more bytes from the upstream, then
                the client gets a TCP RST (SO_LINGER 0) in the middle of the response
- ``refuse``:   the listener is closed (connection refused) and open connections are reset, as when
                the server process dies; the listener comes back on the same port afterwards
- ``throttle``: upstream bytes reach the client at ``rate_bps`` bytes per second

Only the upstream-to-client direction is delayed, throttled or cut (that is where a response is);
a stall holds both. The proxy never touches the bytes' content.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
MODES = ("pass", "latency", "stall", "reset", "refuse", "throttle")
CHUNK = 65536


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    reset_budget: int | None = None  # bytes still forwarded before the RST (reset mode)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False


@dataclass
class ProxyStats:
    accepted: int = 0
    resets: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0  # client -> upstream
    bytes_down: int = 0  # upstream -> client


class FaultProxy:
    """`FaultProxy(host, port).start()`; `url_for(url)` rewrites a URL to go through the proxy."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", port: int = 0,
                 name: str = "proxy") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.name = name
        self.port = port or _free_port()
        self.mode = "pass"
        self.delay_s = 0.0
        self.after_bytes = 0
        self.rate_bps = 0.0
        self.stats = ProxyStats()
        self.history: list[tuple[float, float, str]] = []  # (monotonic, wall clock, mode) of each switch
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"faultproxy-{name}", daemon=True)
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._unstalled = asyncio.Event()

    @classmethod
    def for_url(cls, url: str, name: str = "proxy") -> FaultProxy:
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"no host:port in {url!r}")
        return cls(parts.hostname, parts.port, name=name)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._startup())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url_for(self, url: str) -> str:
        """`url` with its host:port replaced by the proxy's (scheme, credentials, path kept)."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{self.address}" if auth else self.address
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # -- faults -------------------------------------------------------------------------------
    def set(self, mode: str, *, delay_s: float = 0.2, after_bytes: int = 64, rate_bps: float = 256.0) -> float:
        """Switch to `mode`; returns the monotonic time at which it took effect."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
        return self._call(self._apply(mode, delay_s, after_bytes, rate_bps))

    def pass_through(self) -> float:
        return self.set("pass")

    def latency(self, delay_s: float) -> float:
        return self.set("latency", delay_s=delay_s)

    def stall(self) -> float:
        return self.set("stall")

    def reset(self, after_bytes: int = 64) -> float:
        return self.set("reset", after_bytes=after_bytes)

    def refuse(self) -> float:
        return self.set("refuse")

    def throttle(self, rate_bps: float) -> float:
        return self.set("throttle", rate_bps=rate_bps)

    async def _apply(self, mode: str, delay_s: float, after_bytes: int, rate_bps: float) -> float:
        previous = self.mode
        self.mode, self.delay_s, self.after_bytes, self.rate_bps = mode, delay_s, after_bytes, rate_bps
        if mode == "reset":
            for conn in self._conns:
                conn.reset_budget = after_bytes
        if mode == "stall":
            self._unstalled.clear()
        else:
            self._unstalled.set()
        if mode == "refuse" and previous != "refuse":
            await self._close_listener()
            for conn in list(self._conns):
                self._rst(conn)
        elif previous == "refuse" and mode != "refuse":
            await self._listen()
        now = time.monotonic()
        self.history.append((now, time.time(), mode))
        return now

    # -- plumbing -----------------------------------------------------------------------------
    def _call(self, coro: Awaitable[T], timeout: float = 10) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(timeout)

    async def _startup(self) -> None:
        self._unstalled.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def _close_listener(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()  # not wait_closed(): it waits for every open connection

    async def _shutdown(self) -> None:
        await self._close_listener()
        for conn in list(self._conns):
            self._rst(conn)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        conn = _Conn(writer, reset_budget=self.after_bytes if self.mode == "reset" else None)
        self._conns.add(conn)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.stats.upstream_failures += 1
                self._rst(conn)
                return
            conn.upstream = up_writer
            if conn.closed:  # refused while we were connecting
                up_writer.close()
                return
            up = asyncio.create_task(self._upstream(conn, reader))
            down = asyncio.create_task(self._downstream(conn, up_reader))
            conn.tasks += [up, down]
            await asyncio.gather(up, down, return_exceptions=True)  # both end (or are cancelled by a reset)
        finally:
            self._conns.discard(conn)
            self._close(conn)

    async def _upstream(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        """client -> upstream: held while stalled, otherwise forwarded as is."""
        assert conn.upstream is not None
        while not conn.closed:
            data = await reader.read(CHUNK)
            if not data:
                with contextlib.suppress(OSError):
                    conn.upstream.write_eof()
                return
            await self._unstalled.wait()
            if conn.closed:
                return
            self.stats.bytes_up += len(data)
            conn.upstream.write(data)
            await conn.upstream.drain()

    async def _downstream(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        """upstream -> client, through a queue so that latency delays chunks without serialising them."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send_down(conn, queue))
        conn.tasks.append(sender)
        try:
            while not conn.closed:
                data = await reader.read(CHUNK)
                delay = self.delay_s if self.mode == "latency" else 0.0
                queue.put_nowait((time.monotonic() + delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    async def _send_down(self, conn: _Conn, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
        client = conn.client
        while not conn.closed:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._unstalled.wait()
            if conn.closed:
                return
            if not data:
                with contextlib.suppress(OSError):
                    client.write_eof()
                return
            if self.mode == "reset" and conn.reset_budget is not None:
                if len(data) >= conn.reset_budget:
                    if conn.reset_budget:
                        self.stats.bytes_down += conn.reset_budget
                        client.write(data[:conn.reset_budget])
                        await client.drain()
                        await asyncio.sleep(0.01)  # let the client read the first bytes: the cut is mid-response
                    self.stats.resets += 1
                    self._rst(conn)
                    return
                conn.reset_budget -= len(data)
            if self.mode == "throttle" and self.rate_bps > 0:
                await self._trickle(conn, data)
                continue
            self.stats.bytes_down += len(data)  # counted first: the client may read and look before we return
            client.write(data)
            await client.drain()

    async def _trickle(self, conn: _Conn, data: bytes) -> None:
        """Send `data` in slices of 1/20 s worth of the rate."""
        step = max(1, int(self.rate_bps / 20))
        for start in range(0, len(data), step):
            if conn.closed:
                return
            piece = data[start:start + step]
            self.stats.bytes_down += len(piece)
            conn.client.write(piece)
            await conn.client.drain()
            if self.mode == "throttle" and self.rate_bps > 0:
                await asyncio.sleep(len(piece) / self.rate_bps)

    def _rst(self, conn: _Conn) -> None:
        """Abort the client side with a TCP RST (SO_LINGER 0) and drop the upstream connection."""
        if conn.closed:
            return
        conn.closed = True
        sock = conn.client.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.client.transport.abort()
        if conn.upstream is not None:
            conn.upstream.transport.abort()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()

    def _close(self, conn: _Conn) -> None:
        conn.closed = True
        for writer in (conn.client, conn.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
                "listen": self.address, **self.stats.__dict__}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
