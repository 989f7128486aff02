from __future__ import annotations

import pytest

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
    assert degraded.error == "consumer.S.C.pending = 11 (> 10)"
    down = result(status="down", latency=None, **{"consumer.S.C.pending": 99})
    assert rules.evaluate(down) is down


def test_rule_to_down_and_latency_pseudo_metric() -> None:
    rules = RuleSet.for_target("redis", [], ["latency_ms > 100 -> down"])
    assert rules.evaluate(result(latency=150.0)).status == "down"
    assert rules.evaluate(result(latency=50.0)).status == "up"
