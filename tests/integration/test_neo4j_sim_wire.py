"""The Bolt simulator on the wire: raw protocol exchanges, the real driver's features, standalone mode."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import neo4j
import pytest
from neo4j.exceptions import AuthError, CypherSyntaxError

from sandbox.bolt_server import (
    BEGIN,
    COMMIT,
    DISCARD,
    FAILURE,
    GOODBYE,
    HELLO,
    IGNORED,
    LOGOFF,
    LOGON,
    PULL,
    RECORD,
    RESET,
    ROUTE,
    RUN,
    SUCCESS,
)
from sandbox.neo4j_sim import Neo4jSimulator
from sandbox.packstream import Structure, message, unpack
from sandbox.simbase import free_port

pytest_plugins = ["tests.fixtures_neo4j"]

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"scheme": "basic", "principal": "neo4j", "credentials": "neo4j-sandbox"}


class RawBolt:
    """A minimal Bolt client written from the spec, to see exactly what the simulator sends."""

    def __init__(self, port: int, proposals: bytes = bytes((0, 4, 4, 5)) + bytes(12)) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.sock.sendall(b"\x60\x60\xb0\x17" + proposals)
        self.agreed = self._read(4)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self.sock.recv(n - len(data))
            if not part:
                raise ConnectionError("closed by the server")
            data += part
        return data

    def send(self, tag: int, *fields: Any) -> None:
        self.sock.sendall(message(tag, *fields))

    def recv(self) -> Structure:
        data = b""
        while True:
            (size,) = struct.unpack(">H", self._read(2))
            if size == 0:
                return unpack(data)
            data += self._read(size)

    def closed(self) -> bool:
        """True when the server closed the connection (our end is closed too then)."""
        try:
            gone = self.sock.recv(1) == b""
        except ConnectionResetError:
            gone = True
        if gone:
            self.sock.close()
        return gone

    def close(self) -> None:
        self.sock.close()


def _logged_on(port: int) -> RawBolt:
    raw = RawBolt(port)
    assert raw.agreed == bytes((0, 0, 4, 5))
    raw.send(HELLO, {"user_agent": "raw/1"})
    raw.send(LOGON, AUTH)
    hello, logon = raw.recv(), raw.recv()
    assert hello.tag == SUCCESS and hello.fields[0]["server"] == "Neo4j/5.26.1"
    assert hello.fields[0]["hints"]["telemetry.enabled"] is True
    assert logon == Structure(SUCCESS, ({},))
    return raw


def test_failure_then_ignored_until_reset(neo4j_sim: Neo4jSimulator) -> None:
    raw = _logged_on(neo4j_sim.port)
    raw.send(RUN, "MATCH (n) RETURN n", {}, {})
    raw.send(PULL, {"n": -1})
    raw.send(RUN, "RETURN 1", {}, {})
    failure, ignored_pull, ignored_run = raw.recv(), raw.recv(), raw.recv()
    assert failure.tag == FAILURE and failure.fields[0]["code"] == "Neo.ClientError.Statement.SyntaxError"
    assert ignored_pull == ignored_run == Structure(IGNORED)
    raw.send(RESET)
    assert raw.recv() == Structure(SUCCESS, ({},))
    raw.send(RUN, "RETURN 5 AS five", {}, {"db": "neo4j"})
    raw.send(PULL, {"n": -1})
    run, record, summary = raw.recv(), raw.recv(), raw.recv()
    assert run.fields[0]["fields"] == ["five"]
    assert record == Structure(RECORD, ([5],))
    assert summary.fields[0]["db"] == "neo4j" and summary.fields[0]["bookmark"].startswith("FB:")
    raw.send(GOODBYE)
    assert raw.closed()


def test_partial_pull_discard_and_transactions(neo4j_sim: Neo4jSimulator) -> None:
    raw = _logged_on(neo4j_sim.port)
    raw.send(BEGIN, {"db": "system"})
    raw.send(RUN, "SHOW DATABASES YIELD name", {}, {})
    raw.send(PULL, {"n": 2, "qid": -1})
    begin, run, first, second, more = (raw.recv() for _ in range(5))
    assert begin.tag == SUCCESS and run.fields[0]["qid"] == 0
    assert [first.fields[0], second.fields[0]] == [["graph-rag"], ["neo4j"]]
    assert more == Structure(SUCCESS, ({"has_more": True},))
    raw.send(DISCARD, {"n": -1, "qid": 0})
    done = raw.recv()
    assert done.tag == SUCCESS and done.fields[0]["db"] == "system" and "bookmark" not in done.fields[0]
    raw.send(COMMIT)
    assert raw.recv().fields[0]["bookmark"].startswith("FB:system:")
    raw.close()


def test_logoff_then_logon_with_a_wrong_password_closes(neo4j_sim: Neo4jSimulator) -> None:
    raw = _logged_on(neo4j_sim.port)
    raw.send(LOGOFF)
    assert raw.recv() == Structure(SUCCESS, ({},))
    raw.send(LOGON, {**AUTH, "credentials": "wrong"})
    failure = raw.recv()
    assert failure.fields[0] == {"code": "Neo.ClientError.Security.Unauthorized",
                                 "message": "The client is unauthorized due to authentication failure."}
    assert raw.closed()


def test_routing_table_points_at_the_simulator(neo4j_sim: Neo4jSimulator) -> None:
    raw = _logged_on(neo4j_sim.port)
    raw.send(ROUTE, {"address": "localhost"}, [], {"db": "rag"})
    table = raw.recv().fields[0]["rt"]
    assert table["db"] == "graph-rag" and table["ttl"] == 300
    assert {s["role"]: s["addresses"] for s in table["servers"]} == {
        role: [f"127.0.0.1:{neo4j_sim.port}"] for role in ("WRITE", "READ", "ROUTE")}
    raw.send(ROUTE, {}, [], {"db": "missing"})
    assert raw.recv().fields[0]["code"] == "Neo.ClientError.Database.DatabaseNotFound"
    raw.close()


def test_protocol_violation_and_unsupported_versions(neo4j_sim: Neo4jSimulator) -> None:
    raw = _logged_on(neo4j_sim.port)
    raw.send(PULL, {"n": -1})  # nothing is streaming
    assert raw.recv().fields[0]["code"] == "Neo.ClientError.Request.Invalid"
    assert raw.closed()
    old = RawBolt(neo4j_sim.port, proposals=bytes((0, 0, 0, 3)) + bytes((0, 3, 3, 4)) + bytes(8))
    assert old.agreed == b"\x00\x00\x00\x00" and old.closed()
    neo4j_sim.control("set_protocols", {"versions": ["5.0"]})
    v50 = RawBolt(neo4j_sim.port)
    assert v50.agreed == bytes((0, 0, 0, 5))
    v50.send(HELLO, {"user_agent": "raw/1", **AUTH})  # 5.0: credentials in HELLO, no LOGON
    assert v50.recv().tag == SUCCESS
    v50.send(LOGON, AUTH)
    assert v50.recv().tag == FAILURE and v50.closed()


async def test_driver_transactions_and_telemetry(neo4j_sim: Neo4jSimulator) -> None:
    async with neo4j.AsyncGraphDatabase.driver(neo4j_sim.routing_url, auth=("neo4j", "neo4j-sandbox")) as driver:
        records, _, keys = await driver.execute_query("RETURN 7 AS seven", database_="neo4j")
        assert keys == ["seven"] and records[0]["seven"] == 7
        async with driver.session(database="graph-rag") as session:
            tx = await session.begin_transaction()
            assert (await (await tx.run("RETURN 1")).single())[0] == 1
            await tx.rollback()
            with pytest.raises(CypherSyntaxError):
                await (await session.run("CREATE (n)")).consume()
            assert (await (await session.run("RETURN 2")).single())[0] == 2  # RESET cleared the failure
    requests = neo4j_sim.state()["requests"]
    assert requests["TELEMETRY"] >= 1 and requests["ROUTE"] >= 1 and requests["ROLLBACK"] == 1
    assert requests["RESET"] >= 1 and requests["BEGIN"] >= 2  # execute_query is a managed transaction


async def test_driver_sees_wrong_password_as_auth_error(neo4j_sim: Neo4jSimulator) -> None:
    async with neo4j.AsyncGraphDatabase.driver(neo4j_sim.url, auth=("neo4j", "nope")) as driver:
        with pytest.raises(AuthError):
            await driver.verify_connectivity()


def test_standalone_runs_until_sigterm() -> None:
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "sandbox.neo4j_sim", "--port", str(port)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            line = proc.stdout.readline().strip()
            assert re.fullmatch(rf"bolt://127\.0\.0\.1:{port}", line), line
            with neo4j.GraphDatabase.driver(line, auth=("neo4j", "neo4j-sandbox"), connection_timeout=3) as driver:
                records, _, _ = driver.execute_query("CALL dbms.components()", database_="system")
                assert records[0]["edition"] == "enterprise"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
