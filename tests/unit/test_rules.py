from __future__ import annotations

import pytest

from hulk_ops.core.breach import number
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet, parse_rule


def result(status: str = "up", latency: float | None = 2.0, **metrics: float) -> ProbeResult:
    return ProbeResult("t", "nats", status, latency, "1", dict(metrics), None, "2026-01-01T00:00:00.000Z")


def test_parse_forms() -> None:
    rule = parse_rule("consumer.*.pending > 1e3 -> down")
    assert (rule.glob, rule.op, rule.value, rule.status) == ("consumer.*.pending", ">", 1000.0, "down")
    assert parse_rule("latency_ms off").op is None
    for bad in ["", "x >", "x > y", "x >> 3", "x > 3 -> broken", "> 3"]:
        with pytest.raises(ValueError, match="bad rule"):
            parse_rule(bad)


def test_layers_replace_by_glob_and_off_disables() -> None:
    rules = RuleSet.for_target("nats", ["consumer.*.pending > 50"], ["latency_ms off"])
    by_glob = {r.glob: r.value for r in rules.rules}
    assert by_glob["consumer.*.pending"] == 50
    assert "latency_ms" not in by_glob


def test_evaluate_degrades_with_reasons_and_keeps_down() -> None:
    rules = RuleSet.for_target("nats", ["consumer.*.pending > 10"], [])
    healthy = rules.evaluate(result(**{"consumer.S.C.pending": 3}))
    assert healthy.status == "up" and healthy.error is None
    degraded = rules.evaluate(result(**{"consumer.S.C.pending": 11}))
    assert degraded.status == "degraded"
    assert degraded.error == "consumer S/C: 11 pending"
    down = result(status="down", latency=None, **{"consumer.S.C.pending": 99})
    assert rules.evaluate(down) is down


def test_rule_to_down_and_latency_pseudo_metric() -> None:
    rules = RuleSet.for_target("redis", [], ["latency_ms > 100 -> down"])
    assert rules.evaluate(result(latency=150.0)).status == "down"
    assert rules.evaluate(result(latency=50.0)).status == "up"


def k8s_result(**details: object) -> ProbeResult:
    metrics = {"deployments_short": 2.0, "nodes_not_ready": 1.0, "deploy.hulk.api.desired": 3.0,
               "deploy.hulk.api.available": 1.0}
    return ProbeResult("c", "kubernetes", "up", 5.0, "v1", metrics, None, "2026-01-01T00:00:00.000Z", dict(details))


def test_kind_messages_name_the_objects_of_aggregate_metrics() -> None:
    rules = RuleSet.for_target("kubernetes", [], ["deploy.*.available < 2"])
    judged = rules.evaluate(k8s_result(
        deployments_short=[{"namespace": "hulk", "name": "api", "desired": 3, "available": 1},
                           {"namespace": "hulk", "name": "web", "desired": 2, "available": 0}],
        nodes=[{"name": "cpu-node-1", "ready": True}, {"name": "cpu-node-2", "ready": False}]))
    assert judged.status == "degraded"
    # the per-deployment rule says what the aggregate said already: once
    assert judged.error == ("node cpu-node-2 not ready; deployment hulk/api: 1 of 3 available; "
                            "deployment hulk/web: 0 of 2 available")


def test_aggregate_without_details_and_metrics_the_kind_cannot_word_keep_the_generic_message() -> None:
    judged = RuleSet.for_target("kubernetes", [], ["nodes_not_ready off"]).evaluate(k8s_result())
    assert judged.error == "deployments_short = 2 (> 0)"
    redis = ProbeResult("r", "redis", "up", 1.0, "7", {"memory_used_pct": 95.0}, None, "2026-01-01T00:00:00.000Z")
    assert RuleSet.for_target("redis", [], []).evaluate(redis).error == "memory_used_pct = 95 (> 90)"


def test_nats_consumer_message_and_more_than_five_reasons_are_counted() -> None:
    rules = RuleSet.for_target("nats", [], [])
    lag = {f"consumer.ORDERS.c{i}.pending": 11_000.0 + i for i in range(7)}
    judged = rules.evaluate(result(**lag))
    reasons = judged.error.split("; ")
    assert reasons[0] == "consumer ORDERS/c0: 11,000 pending"
    assert len(reasons) == 6 and reasons[-1] == "and 2 more"


def test_a_failing_describer_falls_back_to_the_generic_message() -> None:
    def broken(metric: str, value: float, res: ProbeResult) -> str:
        raise KeyError("details")

    rules = RuleSet([parse_rule("x > 1")], describe=broken)
    assert rules.evaluate(result(x=2.0)).error == "x = 2 (> 1)"
    several = RuleSet([parse_rule("x > 1")], describe=lambda m, v, r: ["a: 1", "", "b: 2"])
    assert several.evaluate(result(x=2.0)).error == "a: 1; b: 2"


@pytest.mark.parametrize(("value", "text"), [(11000, "11,000"), (3.0, "3"), (99.5, "99.5"), (1234.5, "1,234")])
def test_numbers_in_messages(value: float, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(("kind", "metrics", "details", "text"), [
    ("mysql", {"replica_sql_running": 0.0, "replica_io_running": 1.0}, {"replication": {"source": "db-primary"}},
     "replication from db-primary: SQL thread not running"),
    ("mysql", {"threads_connected": 95.0, "max_connections": 100.0, "connections_used_pct": 95.0}, {},
     "connections: 95 of 100 (95%)"),
    ("postgres", {"replication_lag_s": 420.4}, {}, "replica 420 s behind its primary"),
    ("redis", {"memory_used_pct": 95.0, "used_memory_bytes": 0.95 * 2**30, "maxmemory_bytes": 2.0**30}, {},
     "memory: 0.95 of 1.00 GiB (95%)"),
    ("neo4j", {"database.graph.rag.online": 0.0}, {"databases": [{"name": "graph.rag", "status": "offline",
                                                                "message": "stopped by operator"}]},
     "database graph.rag: offline (stopped by operator)"),
    ("runpod", {"endpoint.ep1.up": 0.0}, {}, "endpoint ep1: health unreadable"),
])
def test_kind_messages(kind: str, metrics: dict, details: dict, text: str) -> None:
    res = ProbeResult("t", kind, "up", 1.0, "1", metrics, None, "2026-01-01T00:00:00.000Z", details)
    assert RuleSet.for_target(kind, [], []).evaluate(res).error == text
