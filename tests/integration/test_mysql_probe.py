"""The MySQL/MariaDB kind against a real MariaDB (`mysql_server`: the machine's on 127.0.0.1:3306 when root may log
in without a password, else a private one; or $HULK_OPS_TEST_MYSQL_URL).

Each test gets a private monitoring user and a private schema with a table, dropped afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import asyncmy.errors
import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints import cli
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.probes import registry
from hulk_ops.probes.mysql import replica_metrics
from sandbox.services import Endpoint, Services
from tests.conformance import assert_catalog_covers, assert_emitted_in_catalog

pytestmark = pytest.mark.integration


def live_target(services: Services) -> dict[str, Any]:
    """This kind on the test server (the machine's, or a private one), for the conformance test and the fault
    matrix."""
    return {"url": services.mariadb().url}


class Private:
    def __init__(self, user: str, password: str, schema: str, port: int) -> None:
        self.user, self.password, self.schema, self.port = user, password, schema, port

    def url(self, password: str | None = None, schema: str = "") -> str:
        return f"mysql://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{schema}"


async def _admin(admin_url: str, sql: list[str]) -> None:
    parts = urlsplit(admin_url)
    conn = await asyncmy.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                                 password=parts.password or "", connect_timeout=5, autocommit=True)
    try:
        async with conn.cursor() as cur:
            for statement in sql:
                await cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture(params=[True], ids=["monitor"])
async def private(request: pytest.FixtureRequest, mysql_server: Endpoint) -> AsyncIterator[Private]:
    """A private user (with the replica-status grant unless parametrized False) and schema."""
    tag = uuid.uuid4().hex[:10]
    p = Private(f"hulk_probe_{tag}", f"pw-{uuid.uuid4().hex}", f"hulk_t_{tag}",
                urlsplit(mysql_server.url).port or 3306)
    try:
        await _admin(mysql_server.url, [f"CREATE USER '{p.user}'@'%' IDENTIFIED BY '{p.password}'",
                      f"CREATE DATABASE {p.schema}",
                      f"CREATE TABLE {p.schema}.items (id INT PRIMARY KEY, body VARCHAR(200))",
                      f"INSERT INTO {p.schema}.items VALUES " + ", ".join(f"({i}, REPEAT('x', 150))"
                                                                       for i in range(500)),
                      f"GRANT SELECT ON {p.schema}.* TO '{p.user}'@'%'",
                      f"GRANT REPLICATION CLIENT ON *.* TO '{p.user}'@'%'"])
    except OSError as exc:
        pytest.fail(f"MariaDB/MySQL at {mysql_server.url} is needed for this test: {exc}")
    if request.param:
        try:  # MariaDB 10.5+ reads replica status with SLAVE MONITOR; MySQL with REPLICATION CLIENT
            await _admin(mysql_server.url, [f"GRANT SLAVE MONITOR ON *.* TO '{p.user}'@'%'"])
        except asyncmy.errors.MySQLError:
            pass
    try:
        yield p
    finally:
        await _admin(mysql_server.url, [f"DROP USER IF EXISTS '{p.user}'@'%'", f"DROP DATABASE IF EXISTS {p.schema}"])


async def check(target: dict[str, Any], cycles: int = 1) -> Any:
    raw = {"targets": [{"name": "shop-db", "kind": "mysql", "timeout_s": 3, **target}]}
    config = parse_config(yaml.safe_dump(raw), "mysql.yaml", environ={})
    probe = build_probe(config, config.targets[0])
    try:
        results = []
        for _ in range(cycles):
            results.append(await probe.check())
            await asyncio.sleep(0.2)
        return results[-1] if cycles == 1 else results
    finally:
        await probe.close()


async def test_up_with_connections_uptime_queries_and_database_sizes(private: Private) -> None:
    first, second = await check({"url": private.url()}, cycles=2)
    for result in (first, second):
        assert result.status == "up", result.error
        assert_emitted_in_catalog(result)
    m = second.metrics
    assert 1 <= m["threads_connected"] <= m["max_connections"]
    assert m["connections_used_pct"] == round(100.0 * m["threads_connected"] / m["max_connections"], 2)
    assert m["uptime_s"] > 0 and m["queries"] >= first.metrics["queries"] and m["queries_per_sec"] > 0
    assert m[f"database.{private.schema}.size_bytes"] > 0
    assert "database.mysql.size_bytes" not in m  # system schemas are left out
    assert second.details["role"] == "primary" and second.version and second.version[0].isdigit()
    assert "replication_lag_s" not in m  # not a replica


async def test_schema_sizes_are_read_once_per_database_size_every_s(private: Private, mysql_server: Endpoint) -> None:
    """Summing information_schema.tables reads every table's metadata: a probe reads the sizes at most every
    database_size_every_s, reports the last ones read in between, and reads them again on a new connection."""
    key = f"database.{private.schema}.size_bytes"
    probes = []
    for every in (3600, 0):
        raw = {"targets": [{"name": "shop-db", "kind": "mysql", "timeout_s": 3, "url": private.url(),
                            "database_size_every_s": every}]}
        config = parse_config(yaml.safe_dump(raw), "mysql.yaml", environ={})
        probes.append(build_probe(config, config.targets[0]))
    try:
        before = [(await p.check()).metrics[key] for p in probes]
        await _admin(mysql_server.url, [f"CREATE TABLE {private.schema}.more (id INT PRIMARY KEY, body TEXT)",
                                        f"INSERT INTO {private.schema}.more VALUES (1, REPEAT('y', 100))"])
        after = [await p.check() for p in probes]
        assert all(r.status == "up" for r in after), [r.error for r in after]
        assert after[0].metrics[key] == before[0]  # read an hour ago at most: as last read
        assert after[1].metrics[key] > before[1]  # read every cycle: the new table counts
        await probes[0].close()  # a new connection reads them again
        assert (await probes[0].check()).metrics[key] > before[0]
    finally:
        for p in probes:
            await p.close()


@pytest.mark.parametrize("private", [False], ids=["no-monitor-grant"], indirect=True)
async def test_without_the_replica_status_grant_the_role_is_unknown(private: Private) -> None:
    result = await check({"url": private.url()})
    assert result.status == "up" and result.details["role"] == "unknown"
    assert "replication status not readable" in result.details["replication_error"]


async def test_password_field_and_rule_makes_it_degraded(private: Private) -> None:
    result = await check({"url": f"mysql://{private.user}@127.0.0.1:{private.port}", "password": private.password,
                          "rules": ["threads_connected > 0"]})
    assert result.status == "degraded" and "threads_connected" in result.error


@pytest.mark.parametrize(("target", "words"), [
    ({"password": "wrong-secret-value"}, "authentication failed"),
    ({"schema": "mysql"}, "access denied: Access denied for user"),
    ({"schema": "hulk_no_such_schema", "admin": "yes"}, "database does not exist"),
])
async def test_refusals_are_down_with_a_reason_and_no_secret(private: Private, mysql_server: Endpoint,
                                                             target: dict[str, str], words: str) -> None:
    url = private.url(target.get("password"), target.get("schema", ""))
    if target.get("admin"):
        url = f"{mysql_server.url}/{target['schema']}"
    result = await check({"url": url})
    assert result.status == "down" and words in result.error, result.error
    assert private.password not in result.error and "wrong-secret-value" not in result.error


async def test_closed_port_is_down(closed_port: int) -> None:
    result = await check({"url": f"mysql://root@127.0.0.1:{closed_port}"})
    assert result.status == "down" and result.error == f"connection refused (127.0.0.1:{closed_port})"


def test_replica_status_rows_of_mariadb_and_mysql_8() -> None:
    mariadb = {"Slave_IO_Running": "Yes", "Slave_SQL_Running": "No", "Seconds_Behind_Master": None,
               "Master_Host": "db-1", "Last_SQL_Error": "duplicate key"}
    metrics, details = replica_metrics(mariadb)
    assert metrics == {"replica_io_running": True, "replica_sql_running": False}
    assert details["source"] == "db-1" and details["last_sql_error"] == "duplicate key"
    mysql8 = {"Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": 42,
              "Source_Host": "db-2"}
    assert replica_metrics(mysql8)[0] == {"replica_io_running": True, "replica_sql_running": True,
                                          "replication_lag_s": 42.0}


def test_kind_is_registered_with_catalog_rules_and_capacity() -> None:
    assert registry.entries()["mysql"].module == "hulk_ops.probes.mysql"
    assert_catalog_covers("mysql")
    items = list(registry.capacity("mysql")({"threads_connected": 5, "max_connections": 100,
                                             "database.shop.size_bytes": 2048}))
    assert [(i.name, i.used, i.limit) for i in items] == [("connections", 5, 100.0), ("database shop size", 2048,
                                                                                         None)]


@pytest.mark.parametrize(("url", "words"), [("postgresql://h/db", "must be mysql://"),
                                            ("mysql://h:99999", "bad port")])
def test_config_check_refuses_a_bad_url(tmp_path, capsys, url: str, words: str) -> None:
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "db", "kind": "mysql", "url": url}]}), encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "target 'db'" in err and "url" in err and words in err
