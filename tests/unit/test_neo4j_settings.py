"""The Neo4j probe without a server: settings and config check, rules, parsing of query results."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet
from hulk_ops.entrypoints import cli
from hulk_ops.probes import registry
from hulk_ops.probes.neo4j import Settings, database_details, database_metrics, kernel_component


def test_registered_with_rules_and_tracked_metrics() -> None:
    assert registry.settings_model("neo4j") is Settings
    assert "database.*.online" in registry.tracked_metrics("neo4j")
    rules = RuleSet.for_target("neo4j", [], [])
    result = ProbeResult("g", "neo4j", "up", 3.0, "5.26.1",
                         {"database.graph-rag.online": 0.0, "database.neo4j.online": 1.0}, None, "2026-01-01T00:00:00Z")
    judged = rules.evaluate(result)
    assert judged.status == "degraded"
    assert judged.error == "database graph-rag: not online"  # no details: the state is not known


@pytest.mark.parametrize("url", ["bolt://db:7687", "neo4j://db", "neo4j+s://db.example.com:7687", "bolt+ssc://10.0.0.1"])
def test_accepts_bolt_urls(url: str) -> None:
    assert Settings(name="g", kind="neo4j", url=url).url == url


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://db:7474", "scheme must be one of"),
    ("db:7687", "scheme must be one of"),
    ("bolt://", "no host"),
    ("bolt://neo4j:secret@db:7687", "credentials"),
    ("bolt://db:7687/neo4j", "no path"),
    ("bolt://db:notaport", "not a valid URL"),
])
def test_rejects_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Settings(name="g", kind="neo4j", url=url)


@pytest.mark.parametrize(("target", "field", "fragment"), [
    ({"url": "http://graph:7474"}, "url", "scheme must be one of"),
    ({"url": "bolt://graph:7687", "database": "no spaces"}, "database", "pattern"),
    ({"url": "bolt://graph:7687", "passwd": "x"}, "passwd", "unknown field"),
    ({"url": "bolt://graph:7687", "password": 1234}, "password", "string"),
])
def test_config_check_names_file_target_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  target: dict, field: str, fragment: str) -> None:
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "graph", "kind": "neo4j", **target}]}), encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "target 'graph'" in err and f"{field}:" in err and fragment in err


def test_config_check_accepts_a_good_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hulk.yaml"
    target = {"name": "graph", "kind": "neo4j", "url": "neo4j://graph:7687", "password": "${NEO4J_PW:-x}",
              "database": "graph-rag", "timeout_s": 2}
    path.write_text(yaml.safe_dump({"targets": [target]}), encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 0
    assert "1 targets (neo4j)" in capsys.readouterr().out


def test_database_metrics_counts_and_cluster_members() -> None:
    rows = [
        {"name": "neo4j", "currentStatus": "online", "requestedStatus": "online", "default": True},
        {"name": "neo4j", "currentStatus": "store copying", "requestedStatus": "online",
         "statusMessage": "catching up"},
        {"name": "system", "currentStatus": "online", "requestedStatus": "online"},
        {"name": "graph-rag", "currentStatus": "offline", "requestedStatus": "offline", "error": "stopped"},
    ]
    metrics = database_metrics(rows)
    assert metrics == {"database.neo4j.online": False, "database.system.online": True,
                       "database.graph-rag.online": False, "databases": 3, "databases_online": 1,
                       "databases_offline": 2}
    details = {d["name"]: d for d in database_details(rows)}
    assert details["neo4j"]["status"] == "store copying" and details["neo4j"]["members"] == 2
    assert details["neo4j"]["message"] == "catching up"
    assert details["graph-rag"]["message"] == "stopped"  # the 4.4 column


def test_kernel_component() -> None:
    rows = [{"name": "Other", "versions": ["1"], "edition": "x"},
            {"name": "Neo4j Kernel", "versions": ["5.26.1"], "edition": "enterprise"}]
    assert kernel_component(rows) == ("5.26.1", "enterprise")
    assert kernel_component([]) == (None, None)
