"""One Bolt connection of the simulated Neo4j server: handshake, framing, the request state machine.

Speaks Bolt 4.4 and 5.0-5.4 (the versions offered by `Host.protocols`). The states follow the
Bolt message specification: CONNECTED -HELLO-> READY (4.4, 5.0: auth in HELLO) or
AUTHENTICATION -LOGON-> READY (5.1+); READY -RUN-> STREAMING -PULL/DISCARD-> READY;
READY -BEGIN-> TX_READY -RUN-> TX_STREAMING -PULL/DISCARD-> TX_READY -COMMIT/ROLLBACK-> READY;
any FAILURE -> FAILED, where every request is IGNORED until RESET. A failed HELLO/LOGON and a
protocol violation close the connection, as Neo4j does.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.neo4j_dbms import REQUEST_INVALID, BoltFailure, Database, Dbms, QueryResult
from sandbox.packstream import PackStreamError, Structure, message, unpack

MAGIC = b"\x60\x60\xb0\x17"
SUPPORTED_VERSIONS: tuple[tuple[int, int], ...] = ((5, 4), (5, 3), (5, 2), (5, 1), (5, 0), (4, 4))
MAX_MESSAGE = 16 * 1024 * 1024

HELLO, GOODBYE, RESET, RUN, BEGIN, COMMIT, ROLLBACK = 0x01, 0x02, 0x0F, 0x10, 0x11, 0x12, 0x13
DISCARD, PULL, TELEMETRY, ROUTE, LOGON, LOGOFF = 0x2F, 0x3F, 0x54, 0x66, 0x6A, 0x6B
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F
NAMES = {HELLO: "HELLO", GOODBYE: "GOODBYE", RESET: "RESET", RUN: "RUN", BEGIN: "BEGIN", COMMIT: "COMMIT",
         ROLLBACK: "ROLLBACK", DISCARD: "DISCARD", PULL: "PULL", TELEMETRY: "TELEMETRY", ROUTE: "ROUTE",
         LOGON: "LOGON", LOGOFF: "LOGOFF"}

CONNECTED, AUTHENTICATION, READY, STREAMING = "CONNECTED", "AUTHENTICATION", "READY", "STREAMING"
TX_READY, TX_STREAMING, FAILED = "TX_READY", "TX_STREAMING", "FAILED"
_connection_ids = itertools.count(1)


class Host(Protocol):
    """What a connection needs from the simulator that accepted it."""

    dbms: Dbms
    protocols: tuple[tuple[int, int], ...]
    advertised: str
    lock: Any
    requests: Counter[str]  # request messages seen, by name (tests assert on them)

    async def maybe_delay(self) -> None: ...


def negotiate(proposals: bytes, supported: tuple[tuple[int, int], ...]) -> tuple[int, int] | None:
    """Pick the first client proposal (in the client's order of preference) we support, best minor first.

    A proposal is 4 bytes: reserved, range, minor, major; it covers major.minor down to
    major.(minor - range).
    """
    for i in range(0, len(proposals), 4):
        _, span, minor, major = proposals[i:i + 4]
        offered = [(major, m) for m in range(minor, max(minor - span, 0) - 1, -1)]
        for version in offered:
            if version in supported:
                return version
    return None


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One chunked message; zero-size chunks between messages are keep-alive NOOPs."""
    data = bytearray()
    while True:
        (size,) = struct.unpack(">H", await reader.readexactly(2))
        if size == 0:
            if data:
                return bytes(data)
            continue
        data += await reader.readexactly(size)
        if len(data) > MAX_MESSAGE:
            raise PackStreamError(f"message larger than {MAX_MESSAGE} bytes")


@dataclass
class _Stream:
    result: QueryResult
    db: Database
    position: int = 0


@dataclass
class BoltConnection:
    host: Host
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    version: tuple[int, int] = (0, 0)
    state: str = CONNECTED
    connection_id: str = field(default_factory=lambda: f"bolt-{next(_connection_ids)}")
    user: str = ""
    tx_db: Database | None = None
    streams: dict[int, _Stream] = field(default_factory=dict)
    next_qid: int = 0

    async def serve(self) -> None:
        try:
            if not await self._handshake():
                return
            while True:
                request = unpack(await read_message(self.reader))
                if not isinstance(request, Structure):
                    raise PackStreamError("a Bolt message must be a structure")
                await self.host.maybe_delay()
                if not await self._handle(request):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, PackStreamError):
            return
        finally:
            self.writer.close()

    async def _handshake(self) -> bool:
        preamble = await self.reader.readexactly(20)
        if preamble[:4] != MAGIC:
            return False
        agreed = negotiate(preamble[4:], self.host.protocols)
        if agreed is None:
            self.writer.write(b"\x00\x00\x00\x00")
            await self.writer.drain()
            return False
        self.version = agreed
        self.writer.write(bytes((0, 0, agreed[1], agreed[0])))
        await self.writer.drain()
        return True

    # -- dispatch -----------------------------------------------------------------------------
    async def _handle(self, request: Structure) -> bool:
        """Answer one request; False closes the connection."""
        tag, fields = request.tag, list(request.fields)
        name = NAMES.get(tag, f"0x{tag:02X}")
        self.host.requests[name] += 1
        if tag == GOODBYE:
            return False
        if tag == RESET:
            return await self._reply(self._reset())
        if self.state == FAILED:
            return await self._reply([message(IGNORED)])
        handler = self._handlers().get(tag)
        if handler is None or self.state not in handler[1]:
            failure = BoltFailure(REQUEST_INVALID, f"Message {name} cannot be handled in state {self.state} "
                                                   f"(Bolt {self.version[0]}.{self.version[1]})", fatal=True)
            return await self._fail(failure)
        try:
            with self.host.lock:
                replies = handler[0](fields)
        except BoltFailure as failure:
            return await self._fail(failure)
        return await self._reply(replies)

    def _handlers(self) -> dict[int, tuple[Any, tuple[str, ...]]]:
        tx = (TX_READY, TX_STREAMING)
        handlers: dict[int, tuple[Any, tuple[str, ...]]] = {
            HELLO: (self._hello, (CONNECTED,)),
            RUN: (self._run, (READY, *tx)),
            PULL: (self._pull, (STREAMING, TX_STREAMING)),
            DISCARD: (self._discard, (STREAMING, TX_STREAMING)),
            BEGIN: (self._begin, (READY,)),
            COMMIT: (self._commit, tx),
            ROLLBACK: (self._rollback, tx),
            ROUTE: (self._route, (READY,)),
        }
        if self.version >= (5, 1):
            handlers[LOGON] = (self._logon, (AUTHENTICATION,))
            handlers[LOGOFF] = (self._logoff, (READY,))
        if self.version >= (5, 4):
            handlers[TELEMETRY] = (self._telemetry, (READY, *tx))
        return handlers

    async def _reply(self, replies: list[bytes]) -> bool:
        self.writer.write(b"".join(replies))
        await self.writer.drain()
        return True

    async def _fail(self, failure: BoltFailure) -> bool:
        self.state, self.tx_db = FAILED, None
        self.streams.clear()
        await self._reply([message(FAILURE, failure.metadata())])
        return not failure.fatal

    # -- connection setup ---------------------------------------------------------------------
    def _hello(self, fields: list[Any]) -> list[bytes]:
        extra = fields[0] if fields and isinstance(fields[0], dict) else {}
        meta: dict[str, Any] = {"server": f"Neo4j/{self.host.dbms.version}", "connection_id": self.connection_id}
        hints: dict[str, Any] = {"connection.recv_timeout_seconds": 120}
        if self.version >= (5, 4):
            hints["telemetry.enabled"] = True
        if self.version >= (4, 3):
            meta["hints"] = hints
        if self.version < (5, 0) and "utc" in (extra.get("patch_bolt") or []):
            meta["patch_bolt"] = ["utc"]
        if self.version < (5, 1):
            self.user = self.host.dbms.authenticate(extra)
            self.state = READY
        else:
            self.state = AUTHENTICATION
        return [message(SUCCESS, meta)]

    def _logon(self, fields: list[Any]) -> list[bytes]:
        self.user = self.host.dbms.authenticate(fields[0] if fields and isinstance(fields[0], dict) else {})
        self.state = READY
        return [message(SUCCESS, {})]

    def _logoff(self, _fields: list[Any]) -> list[bytes]:
        self.user, self.state = "", AUTHENTICATION
        return [message(SUCCESS, {})]

    def _reset(self) -> list[bytes]:
        self.tx_db = None
        self.streams.clear()
        if self.state not in (CONNECTED, AUTHENTICATION):
            self.state = READY
        return [message(SUCCESS, {})]

    def _telemetry(self, _fields: list[Any]) -> list[bytes]:
        return [message(SUCCESS, {})]

    def _route(self, fields: list[Any]) -> list[bytes]:
        extra = fields[2] if len(fields) > 2 else None
        name = extra.get("db") if isinstance(extra, dict) else extra  # 4.3 sent the name itself
        db = self.host.dbms.resolve(name)
        servers = [{"addresses": [self.host.advertised], "role": role} for role in ("WRITE", "READ", "ROUTE")]
        return [message(SUCCESS, {"rt": {"ttl": 300, "db": db.name, "servers": servers}})]

    # -- queries and transactions -------------------------------------------------------------
    def _run(self, fields: list[Any]) -> list[bytes]:
        query = fields[0] if fields and isinstance(fields[0], str) else ""
        extra = fields[2] if len(fields) > 2 and isinstance(fields[2], dict) else {}
        db = self.tx_db or self.host.dbms.open(extra.get("db"))
        result = self.host.dbms.run(query, db)
        meta: dict[str, Any] = {"fields": result.fields, "t_first": 0}
        if self.tx_db is None:
            self.streams = {0: _Stream(result, db)}
            self.state = STREAMING
        else:
            qid, self.next_qid = self.next_qid, self.next_qid + 1
            self.streams[qid] = _Stream(result, db)
            meta["qid"] = qid
            self.state = TX_STREAMING
        return [message(SUCCESS, meta)]

    def _pull(self, fields: list[Any]) -> list[bytes]:
        return self._consume(fields, send=True)

    def _discard(self, fields: list[Any]) -> list[bytes]:
        return self._consume(fields, send=False)

    def _consume(self, fields: list[Any], send: bool) -> list[bytes]:
        extra = fields[0] if fields and isinstance(fields[0], dict) else {}
        n, qid = int(extra.get("n", -1)), int(extra.get("qid", -1))
        if qid == -1:
            qid = max(self.streams, default=-1)
        stream = self.streams.get(qid)
        if stream is None:
            raise BoltFailure(REQUEST_INVALID, f"No open result with qid {qid}")
        records = stream.result.records
        end = len(records) if n < 0 else min(len(records), stream.position + n)
        out = [message(RECORD, row) for row in records[stream.position:end]] if send else []
        stream.position = end
        if end < len(records):
            return [*out, message(SUCCESS, {"has_more": True})]
        del self.streams[qid]
        meta: dict[str, Any] = {"type": stream.result.type, "t_last": 0, "db": stream.db.name}
        if self.tx_db is None:
            meta["bookmark"] = self._bookmark(stream.db)
            self.state = READY
        elif not self.streams:
            self.state = TX_READY
        return [*out, message(SUCCESS, meta)]

    def _begin(self, fields: list[Any]) -> list[bytes]:
        extra = fields[0] if fields and isinstance(fields[0], dict) else {}
        self.tx_db = self.host.dbms.open(extra.get("db"))
        self.streams, self.next_qid, self.state = {}, 0, TX_READY
        return [message(SUCCESS, {})]

    def _commit(self, _fields: list[Any]) -> list[bytes]:
        db = self.tx_db or self.host.dbms.resolve(None)
        self.tx_db, self.streams, self.state = None, {}, READY
        return [message(SUCCESS, {"bookmark": self._bookmark(db)})]

    def _rollback(self, _fields: list[Any]) -> list[bytes]:
        self.tx_db, self.streams, self.state = None, {}, READY
        return [message(SUCCESS, {})]

    def _bookmark(self, db: Database) -> str:
        self.host.dbms.commits += 1
        return f"FB:{db.name}:{self.host.dbms.commits}"
