"""Burn-rate alerting: the multiwindow thresholds, grouping by root cause, open once and resolve once."""

from __future__ import annotations

import pytest

from hulk_ops.core import burn

pytestmark = pytest.mark.unit


def counts(long_ratio: float, short_ratio: float, long_w: str = "1h", short_w: str = "5m") -> dict:
    return {long_w: (1000, round(1000 * long_ratio)), short_w: (100, round(100 * short_ratio))}


def test_page_needs_both_windows_and_covers_the_ticket():
    objective = {"db": 99.9, "api": 99.9, "slow": 99.0}
    fired = burn.firing({
        "db": {**counts(0.02, 0.05), **counts(0.02, 0.05, "6h", "30m")},  # 20x and 50x: page (not also ticket)
        "api": counts(0.02, 0.0),  # burned, but not in the last 5 minutes: nothing
        "slow": counts(0.07, 0.07, "6h", "30m"),  # 7x over 6 h and 30 min at 99 %: ticket
    }, objective)
    assert [(f.target, f.severity) for f in fired] == [("db", "page"), ("slow", "ticket")]
    assert fired[0].long_rate == 20.0 and fired[0].short_rate == 50.0
    assert burn.firing({"db": {"1h": (2, 2), "5m": (2, 2)}}, objective) == []  # too few samples to say


def test_grouped_by_root_cause_opened_once_resolved_once():
    depends_on = {"api": ["db"], "web": ["api"], "db": []}
    statuses = {"db": "down", "api": "down", "web": "degraded"}
    fired = [burn.Firing(t, "page", 20.0, 30.0) for t in ("api", "web", "db")]
    state, notices = burn.step(fired, statuses, depends_on, {}, now=100.0)
    assert [(n.event, n.alert_id, n.targets) for n in notices] == [("burn", "burn:page:db", ("db", "api", "web"))]
    state, notices = burn.step(fired[:2], statuses, depends_on, state, now=160.0)
    assert notices == [] and state["burn:page:db"]["opened_at"] == 100.0
    state, notices = burn.step([], {"db": "up", "api": "up", "web": "up"}, depends_on, state, now=220.0)
    assert [(n.event, n.alert_id, n.opened_at, n.at) for n in notices] == [("burn_resolve", "burn:page:db", 100.0,
                                                                             220.0)]
    assert state == {}
