"""A Neo4j server simulator speaking Bolt 4.4 and 5.0-5.4, for the real `neo4j` driver.

`bolt://` and `neo4j://` URLs both work (ROUTE answers a routing table pointing at the simulator
itself). User ``neo4j``, password ``neo4j-sandbox`` unless told otherwise. Seeded as a Neo4j
5.26.1 enterprise standalone server with databases ``neo4j`` (default), ``system`` and
``graph-rag`` (alias ``rag``), all online. It answers ``RETURN <n>``, ``CALL dbms.components()``
and ``SHOW DATABASES`` (see `sandbox/neo4j_dbms.py`); the wire protocol is in
`sandbox/bolt_server.py` and `sandbox/packstream.py`.

Faults (`set_fault`): ``down`` and ``stall`` also drop the connections already open, as a dead
server would; ``slow`` delays every request by ``delay_s``.

`control(action, body)` actions:

- ``set_database`` ``{"name", "status", "requested"?, "message"?}``: a database's currentStatus
  (online, offline, starting, stopping, store copying, quarantined, ...); an unknown name is
  created. Queries against a database that is not online fail with DatabaseUnavailable.
- ``set_password`` ``{"password"}``: new password for new connections (``null``: auth disabled).
- ``set_version`` ``{"version"?, "edition"?}``: what dbms.components() and HELLO report
  (a ``4.x`` version also switches SHOW DATABASES to the 4.4 columns).
- ``set_protocols`` ``{"versions": ["5.4", "4.4", ...]}``: the Bolt versions the handshake accepts.
- ``state`` ``{}``: a snapshot of the above.

Standalone: ``python -m sandbox.neo4j_sim --port 7687`` prints its URL and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sandbox.bolt_server import SUPPORTED_VERSIONS, BoltConnection
from sandbox.neo4j_dbms import DEFAULT_PASSWORD, DEFAULT_USER, EDITIONS, Dbms
from sandbox.simbase import Simulator


class Neo4jSimulator(Simulator):
    name = "neo4j"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None,
                 password: str | None = DEFAULT_PASSWORD) -> None:
        super().__init__(host, port)
        self.dbms = Dbms(user=DEFAULT_USER, password=password, address=f"localhost:{self.port}")
        self.protocols: tuple[tuple[int, int], ...] = SUPPORTED_VERSIONS
        self.requests: Counter[str] = Counter()
        self._connections: dict[asyncio.Task[None], BoltConnection] = {}

    @property
    def url(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def routing_url(self) -> str:
        return f"neo4j://{self.host}:{self.port}"

    @property
    def advertised(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        super().stop()
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    # -- server -------------------------------------------------------------------------------
    async def _start_server(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, host, port, reuse_address=True, ssl=self.ssl_context)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = BoltConnection(self, reader, writer)
        self._connections[task] = connection
        try:
            await connection.serve()
        finally:
            self._connections.pop(task, None)

    async def _close_listener(self) -> None:
        await super()._close_listener()
        tasks = list(self._connections)
        for connection in self._connections.values():
            connection.writer.transport.abort()  # a dead server drops its connections too
        if tasks:
            await asyncio.wait(tasks, timeout=2)

    # -- domain states ------------------------------------------------------------------------
    def control(self, action: str, body: dict[str, Any]) -> Any:
        with self.lock:
            if action == "set_database":
                db = self.dbms.set_status(str(body["name"]), str(body["status"]), body.get("requested"),
                                          str(body.get("message") or ""))
                return {"name": db.name, "currentStatus": db.current, "requestedStatus": db.requested}
            if action == "set_password":
                password = body.get("password")
                self.dbms.password = None if password is None else str(password)
                return {"auth_enabled": password is not None}
            if action == "set_version":
                edition = str(body.get("edition", self.dbms.edition))
                if edition not in EDITIONS:
                    raise ValueError(f"unknown edition {edition!r} (known: {', '.join(EDITIONS)})")
                self.dbms.version, self.dbms.edition = str(body.get("version", self.dbms.version)), edition
                return {"version": self.dbms.version, "edition": self.dbms.edition}
            if action == "set_protocols":
                self.protocols = _parse_versions(body["versions"])
                return {"versions": [f"{major}.{minor}" for major, minor in self.protocols]}
            if action == "state":
                return self.state()
        raise KeyError(action)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": self.dbms.version,
                "edition": self.dbms.edition,
                "auth_enabled": self.dbms.password is not None,
                "protocols": [f"{major}.{minor}" for major, minor in self.protocols],
                "databases": {db.name: db.current for db in self.dbms.databases.values()},
                "connections": len(self._connections),
                "requests": dict(self.requests),
            }


def _parse_versions(values: Sequence[Any]) -> tuple[tuple[int, int], ...]:
    versions = []
    for value in values:
        major, _, minor = str(value).partition(".")
        version = (int(major), int(minor or 0))
        if version not in SUPPORTED_VERSIONS:
            known = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_VERSIONS)
            raise ValueError(f"unsupported Bolt version {value!r} (supported: {known})")
        versions.append(version)
    if not versions:
        raise ValueError("at least one Bolt version is needed")
    return tuple(sorted(set(versions), reverse=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.neo4j_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7687)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help=f"password of user {DEFAULT_USER}")
    parser.add_argument("--version", default=None, help="Neo4j version to report (default: 5.26.1)")
    args = parser.parse_args(argv)
    sim = Neo4jSimulator(args.host, args.port, password=args.password)
    if args.version:
        sim.control("set_version", {"version": args.version})

    def banner() -> str:
        print(f"neo4j simulator {sim.dbms.version} {sim.dbms.edition}: user {DEFAULT_USER}, "
              f"also {sim.routing_url}; SIGTERM or Ctrl-C stops it", file=sys.stderr, flush=True)
        return sim.url

    return sim.serve_forever(banner)


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
