"""Fixtures of the fault-injection tests (load with ``pytest_plugins = ["tests.fixtures_faults"]``).

`fault_proxy(upstream)` puts a `tests.faultproxy.FaultProxy` in front of a real server (an URL or
``host:port``); every proxy made is stopped after the test. `chatty_server` is a loopback TCP
server that answers each line with `RESPONSE` (5,204 bytes), for the proxy's own tests.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.faultproxy import FaultProxy

RESPONSE = b"".join(b"line %04d of the response\n" % i for i in range(200)) + b"END\n"  # 5,204 bytes


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    made: list[FaultProxy] = []

    def _make(upstream: str, name: str = "proxy") -> FaultProxy:
        proxy = FaultProxy.for_url(upstream, name=name).start()
        made.append(proxy)
        return proxy

    yield _make
    for proxy in made:
        proxy.stop()


@pytest.fixture
def chatty_server() -> Iterator[tuple[str, bytes]]:
    """(host:port, RESPONSE): a server that sends RESPONSE for every line it receives (threads, blocking sockets)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    _line, buffer = buffer.split(b"\n", 1)
                    try:
                        conn.sendall(RESPONSE)
                    except OSError:
                        return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", RESPONSE
    finally:
        stop.set()
        server.close()
