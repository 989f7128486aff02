"""The simulated Neo4j DBMS behind the Bolt simulator: its answers, database states and auth (no sockets)."""

from __future__ import annotations

import pytest

from sandbox.neo4j_dbms import DATABASE_NOT_FOUND, DATABASE_UNAVAILABLE, SYNTAX_ERROR, UNAUTHORIZED, BoltFailure, Dbms


def test_dbms_answers_the_probe_queries() -> None:
    dbms = Dbms()
    system = dbms.open("system")
    assert dbms.run("RETURN 1", system).records == [[1]]
    assert dbms.run("  return 42 AS answer ; ", system).fields == ["answer"]
    components = dbms.run("CALL dbms.components()", system)
    assert components.fields == ["name", "versions", "edition"]
    assert components.records == [["Neo4j Kernel", ["5.26.1"], "enterprise"]]
    assert dbms.run("CALL dbms.components() YIELD edition", system).records == [["enterprise"]]
    shown = dbms.run("SHOW DATABASES", system)
    assert [r[0] for r in shown.records] == ["graph-rag", "neo4j", "system"]
    assert "statusMessage" in shown.fields and "constituents" in shown.fields
    assert dbms.run("SHOW DATABASE rag YIELD name", system).records == [["graph-rag"]]
    assert dbms.run("SHOW DATABASE nothing", system).records == []
    assert dbms.run("SHOW DEFAULT DATABASE YIELD name", system).records == [["neo4j"]]


def test_dbms_44_columns() -> None:
    dbms = Dbms(version="4.4.30")
    shown = dbms.run("SHOW DATABASES", dbms.open("system"))
    assert shown.fields == ["name", "aliases", "access", "address", "role", "requestedStatus", "currentStatus",
                            "error", "default", "home"]


@pytest.mark.parametrize(("query", "code"), [("MATCH (n) RETURN n", SYNTAX_ERROR),
                                             ("CALL dbms.components() YIELD nope", SYNTAX_ERROR)])
def test_dbms_rejects_other_queries(query: str, code: str) -> None:
    dbms = Dbms()
    with pytest.raises(BoltFailure) as caught:
        dbms.run(query, dbms.open(None))
    assert caught.value.code == code and not caught.value.fatal


def test_dbms_database_states_and_auth() -> None:
    dbms = Dbms()
    dbms.set_status("graph-rag", "offline")
    with pytest.raises(BoltFailure) as caught:
        dbms.open("rag")
    assert caught.value.code == DATABASE_UNAVAILABLE
    assert dbms.resolve("graph-rag").requested == "offline"
    with pytest.raises(BoltFailure) as caught:
        dbms.open("missing")
    assert caught.value.code == DATABASE_NOT_FOUND
    with pytest.raises(ValueError, match="system"):
        dbms.set_status("system", "offline")
    with pytest.raises(ValueError, match="unknown database status"):
        dbms.set_status("neo4j", "sleepy")
    assert dbms.authenticate({"scheme": "basic", "principal": "neo4j", "credentials": "neo4j-sandbox"}) == "neo4j"
    with pytest.raises(BoltFailure) as caught:
        dbms.authenticate({"scheme": "basic", "principal": "neo4j", "credentials": "nope"})
    assert caught.value.code == UNAUTHORIZED and caught.value.fatal
