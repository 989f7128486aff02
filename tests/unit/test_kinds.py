"""Every registered kind through the registry: its module keeps the contract and what it declares is consistent."""

from __future__ import annotations

import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.core.kind import CapacityItem
from hulk_ops.core.rules import RuleSet, parse_rule
from hulk_ops.probes import registry
from tests.conformance import assert_catalog_covers

pytestmark = pytest.mark.unit
BUILTIN = ("http", "kubernetes", "nats", "neo4j", "postgres", "prometheus", "qdrant", "redis", "runpod", "tcp")


def test_builtin_kinds_come_from_hulk_ops_entry_points() -> None:
    entries = registry.entries()
    assert set(BUILTIN) <= set(entries)
    assert all(entries[k].dist == "hulk-ops" and entries[k].module == f"hulk_ops.probes.{k}" for k in BUILTIN)
    assert registry.problems() == []


@pytest.mark.parametrize("kind", registry.kinds())
def test_kind_module_keeps_the_contract(kind: str) -> None:
    mod = registry.module(kind)
    assert mod.PROBE.kind == kind
    for text in registry.default_rules(kind):
        parse_rule(text)
    assert RuleSet.for_target(kind, [], []).rules  # every kind has default rules (at least on latency)
    assert registry.display_name(kind)
    example = registry.example(kind)
    assert example is not None and example["kind"] == kind
    config = parse_config(yaml.safe_dump({"targets": [{"name": "t", **example}]}), "k.yaml", environ={})
    assert config.targets[0].kind == kind
    assert registry.url_scheme(kind)


@pytest.mark.parametrize("kind", registry.kinds())
def test_rule_and_tracked_globs_lie_inside_the_catalog(kind: str) -> None:
    assert_catalog_covers(kind)


def test_capacity_extractors_come_from_the_kind_modules() -> None:
    assert {k for k in registry.kinds() if registry.capacity(k)} >= {"redis", "postgres", "nats", "qdrant", "neo4j",
                                                                       "kubernetes"}
    items = list(registry.capacity("redis")({"used_memory_bytes": 10, "maxmemory_bytes": 0, "connected_clients": 3,
                                             "maxclients": 100}))
    assert items == [CapacityItem("memory", 10, None, "bytes", "used_memory_bytes"),
                     CapacityItem("clients", 3, 100.0, "count", "connected_clients")]


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(registry.KindError, match=r"unknown kind 'nope' \(known: http, kubernetes, "):
        registry.module("nope")


def test_metrics_doc_is_up_to_date() -> None:
    from hulk_ops.entrypoints import metrics_doc

    assert metrics_doc.DOC.read_text(encoding="utf-8") == metrics_doc.render(), (
        "docs/METRICS.md is stale: run python -m hulk_ops.entrypoints.metrics_doc")


def test_a_stale_install_without_the_builtin_entry_points_says_so(monkeypatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    registry.refresh()
    try:
        with pytest.raises(registry.KindError, match=r"unknown kind 'redis' \(known: none\); hulk-ops' own kinds "
                                                     r"are not among the hulk_ops.kinds entry points.*uv sync"):
            registry.module("redis")
    finally:
        monkeypatch.undo()
        registry.refresh()
    assert "redis" in registry.kinds()
