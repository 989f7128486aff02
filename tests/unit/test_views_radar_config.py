"""Radar file and drift rule; the views' config sections (slo, cost, actions.prices) validated like the rest;
timeline entries made from any event with a `source`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.dashboard.readmodel.radar import DEFAULT_FILE, RadarError, drift, load_radar, parse_version
from hulk_ops.dashboard.readmodel.store import Event
from hulk_ops.dashboard.readmodel.timeline import from_event


@pytest.mark.parametrize(("text", "parsed"), [
    ("7.2.4", (7, 2, 4)), ("v1.33.4", (1, 33, 4)), ("PostgreSQL 16.4 (Debian)", (16, 4)), ("16", (16,)),
    ("nginx/1.25.3", (1, 25, 3)), ("2.53.0-rc.1", (2, 53, 0)), ("", None), (None, None), ("latest", None),
])
def test_parse_version(text, parsed) -> None:
    assert parse_version(text) == parsed


@pytest.mark.parametrize(("pinned", "live", "expected"), [
    ("7.2", "7.2.4", "none"),  # patch levels never drift
    ("7.2", "7.0.15", "minor"),
    ("16", "15.4", "major"),
    ("16", "16.9", "none"),  # pinned to a major only: minors are fine
    ("1.33", "v1.33.4", "none"),
    ("1.33", "v2.0.0", "major"),
    ("2.10", "2", "minor"),  # live has no minor: cannot be shown to match
    (None, "7.2.4", "unknown"),
    ("7.2", "unknown-build", "unknown"),
])
def test_drift_is_major_or_minor_mismatch(pinned, live, expected) -> None:
    assert drift(pinned, live) == expected


def test_the_repository_radar_loads() -> None:
    radar = load_radar(DEFAULT_FILE)
    names = [c.name for c in radar.components]
    assert {"PostgreSQL", "Redis", "NATS JetStream", "Kubernetes", "RunPod GPU cloud"} <= set(names)
    assert {c.quadrant for c in radar.components} == {"Data", "Messaging", "Compute", "Cloud"}
    assert {c.ring for c in radar.components} == {"Adopt", "Trial", "Assess", "Hold"}


@pytest.mark.parametrize(("text", "expected"), [
    ("components: [{name: A, quadrant: Data, ring: Later}]", "components.0.ring"),
    ("components: [{name: A, quadrant: Data, ring: Adopt, pinned: latest}]", "no version number in 'latest'"),
    ("components: [{name: A, quadrant: Data, ring: Adopt, colour: red}]", "components.0.colour: unknown field"),
    ("components: [{name: A, quadrant: Data, ring: Adopt, matches: {kinds: [mongo]}}]", "unknown kind 'mongo'"),
    ("components: [{name: A, quadrant: Data, ring: Adopt}, {name: A, quadrant: Cloud, ring: Hold}]",
     "duplicate component names: A"),
    ("components: [{name: A", "cannot read"),
])
def test_bad_radar_files_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "radar.yaml"
    path.write_text(text)
    with pytest.raises(RadarError) as caught:
        load_radar(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_slo_defaults_and_target_overrides() -> None:
    config = parse_config("slo: {availability: 99.5, latency_p95_ms: 200}\n"
                          "targets: [{name: a, kind: redis, url: 'redis://x', slo: {availability: 99.95}},"
                          " {name: b, kind: redis, url: 'redis://y'}]")
    a, b = config.targets
    assert (config.slo_for(a).availability, config.slo_for(a).latency_p95_ms) == (99.95, 200)
    assert (config.slo_for(b).availability, config.slo_for(b).latency_p95_ms) == (99.5, 200)
    assert parse_config("").slo.availability == 99.9
    prices = parse_config("actions: {prices: {cpu_hour: 0.031, gib_hour: 0.004, gpu_hour: 1.89}}").actions.prices
    assert (prices.cpu_hour, prices.gib_hour, prices.gpu_hour) == (0.031, 0.004, 1.89)


@pytest.mark.parametrize(("text", "expected"), [
    ("slo: {availability: 100}", "bad.yaml: slo.availability: must be below 100"),
    ("targets: [{name: a, kind: redis, url: 'redis://x', slo: {availability: 0}}]",
     "bad.yaml: target 'a' (targets[0]): slo.availability"),
    ("targets: [{name: a, kind: redis, url: 'redis://x', slo: {uptime: 99}}]",
     "bad.yaml: target 'a' (targets[0]): slo.uptime: unknown field"),
    ("cost: {monthly_budget_usd: -5}", "bad.yaml: cost.monthly_budget_usd"),
    ("actions: {prices: {gpu_hour: -1}}", "bad.yaml: actions.prices.gpu_hour"),
    ("dashboard: {radar: x.yaml}", "bad.yaml: dashboard.radar: unknown field"),
])
def test_bad_view_sections_are_rejected(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "bad.yaml")
    assert expected in str(caught.value)


def test_config_check_exits_2_on_a_bad_slo(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{name: cache, kind: redis, url: 'redis://x', slo: {availability: 101}}]\n")
    run = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(bad)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2
    assert f"{bad}: target 'cache' (targets[0]): slo.availability: must be below 100" in run.stderr + run.stdout


def test_any_event_with_a_source_becomes_a_timeline_entry() -> None:
    kinds = {"api": "http"}
    action = from_event(Event("1-0", 100.0, {"source": "action", "type": "action", "target": "api", "action": "purge",
                                             "outcome": "failed", "user": "ana", "error": "stream not found",
                                             "at": "1970-01-01T00:01:40.000Z"}), kinds)
    assert (action.source, action.kind, action.severity, action.title) == ("action", "http", "warning",
                                                                          "purge failed by ana")
    assert "stream not found" in action.detail
    other = from_event(Event("2-0", 200.0, {"source": "notifier", "target": "api", "channel": "slack",
                                            "severity": "info", "title": "paged on-call"}), kinds)
    assert (other.source, other.ts, other.title, other.detail) == ("notifier", 200.0, "paged on-call",
                                                                   "channel=slack")
    change = from_event(Event("3-0", 300.0, {"source": "probe", "type": "state_change", "target": "api",
                                             "previous": "", "current": "down", "error": "refused",
                                             "at": "bad time"}), kinds)
    assert (change.title, change.severity, change.ts) == ("new → down", "critical", 300.0)
