"""The collector's own /metrics: a per-kind duration histogram, target state as a label, build info."""

from __future__ import annotations

import platform
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from hulk_ops.collectors.telemetry import CollectorMetrics, TargetCounter, TargetGauge, TargetStates
from tests.unit.test_scheduler import make, run_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def states(metrics: CollectorMetrics, target: str) -> dict[str, float]:
    return {s: metrics.registry.get_sample_value("hulk_ops_target_state", {"target": target, "kind": "redis",
                                                                           "state": s})
            for s in ("up", "degraded", "down", "stale")}


def test_target_state_is_one_label_of_four_and_turns_stale_after_three_intervals() -> None:
    clock = Clock()
    metrics = CollectorMetrics()
    metrics.registry.unregister(metrics.target_state)
    metrics.target_state = TargetStates(clock)
    metrics.registry.register(metrics.target_state)
    metrics.target_state.set("db", "redis", "degraded", 10.0)
    assert states(metrics, "db") == {"up": 0, "degraded": 1, "down": 0, "stale": 0}
    clock.now += 30.5  # no result for more than 3 intervals
    assert states(metrics, "db") == {"up": 0, "degraded": 0, "down": 0, "stale": 1}
    metrics.target_state.set("db", "redis", "down", 10.0)
    assert states(metrics, "db")["down"] == 1
    metrics.target_state.remove("db", "redis")
    assert "hulk_ops_target_state{" not in generate_latest(metrics.registry).decode()


def test_build_info_carries_version_and_python() -> None:
    text = generate_latest(CollectorMetrics().registry).decode()
    line = next(x for x in text.splitlines() if x.startswith("hulk_ops_build_info{"))
    assert f'python="{platform.python_version()}"' in line and 'version="' in line and line.endswith(" 1.0")


async def test_durations_are_a_histogram_per_kind_and_a_gauge_per_target() -> None:
    _store, metrics, writer, scheduler = make([("a", 0.1, 0.05, 0.0), ("b", 0.1, 0.05, 0.01)])
    await run_for(scheduler, writer, 0.35)
    text = generate_latest(metrics.registry).decode()
    buckets = [x for x in text.splitlines() if x.startswith("hulk_ops_probe_duration_seconds_bucket")]
    assert buckets and all('target="' not in x for x in buckets)
    assert metrics.registry.get_sample_value("hulk_ops_probe_duration_seconds_count", {"kind": "redis"}) >= 4
    slow = metrics.registry.get_sample_value("hulk_ops_probe_last_duration_seconds", {"target": "b", "kind": "redis"})
    assert 0.009 < slow < 0.05
    assert states(metrics, "a") == {"up": 1, "degraded": 0, "down": 0, "stale": 0}
    assert "hulk_ops_target_status" not in text and "hulk_ops_target_up" not in text


def test_a_target_gauge_is_exposed_like_a_prometheus_client_gauge() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    gauge = TargetGauge("hulk_test_interval_seconds", "Interval of each target", ["target", "kind"], ours)
    reference = Gauge("hulk_test_interval_seconds", "Interval of each target", ["target", "kind"], registry=theirs)
    for g in (gauge, reference):
        g.labels("db", "redis").set(15)
        g.labels("mq", "nats")  # a child made and never set shows 0, as prometheus_client's does
        g.labels("gone", "redis").set(2)
        g.remove("gone", "redis")
    assert generate_latest(ours) == generate_latest(theirs)
    assert ours.get_sample_value("hulk_test_interval_seconds", {"target": "db", "kind": "redis"}) == 15


def test_a_target_counter_is_exposed_like_a_prometheus_client_counter(monkeypatch) -> None:
    import prometheus_client.metrics

    monkeypatch.setattr(time, "time", lambda: 1_764_800_000.0)  # both stamp _created when a child is made
    for created in (True, False):  # and both follow PROMETHEUS_DISABLE_CREATED_SERIES
        monkeypatch.setattr(prometheus_client.metrics, "_use_created", created)
        ours, theirs = CollectorRegistry(), CollectorRegistry()
        counter = TargetCounter("hulk_test_probes", "Probe results by status", ["target", "kind", "status"], ours)
        reference = Counter("hulk_test_probes", "Probe results by status", ["target", "kind", "status"],
                            registry=theirs)
        for c in (counter, reference):
            up = c.labels("db", "redis", "up")
            for _ in range(3):
                up.inc()
            c.labels("db", "redis", "down").inc(2)
            c.labels("mq", "nats", "up")  # made and never incremented: 0
        assert generate_latest(ours) == generate_latest(theirs)
        assert ours.get_sample_value("hulk_test_probes_total", {"target": "db", "kind": "redis", "status": "up"}) == 3
    with pytest.raises(ValueError, match="3 label values expected"):
        counter.labels("db")


def test_a_removed_target_gauge_child_stays_removed_and_bad_labels_are_refused() -> None:
    registry = CollectorRegistry()
    gauge = TargetGauge("hulk_test_breaker_open", "1 while open", ["target"], registry)
    child = gauge.labels("dead")
    child.set(1)
    gauge.remove("dead")
    child.set(1)  # a probe that finished after its target left the config
    assert registry.get_sample_value("hulk_test_breaker_open", {"target": "dead"}) is None
    with pytest.raises(KeyError):
        gauge.remove("dead")
    with pytest.raises(ValueError, match="1 label values expected"):
        gauge.labels("a", "b")
