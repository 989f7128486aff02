"""Radar lifecycle rules: which release cycle a live version belongs to, when it is flagged, schema errors, the
shipped radar.yaml, migration readiness (blast radius, actions) and the digest body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import yaml

from hulk_ops.collectors.notify import digest
from hulk_ops.core.radar import DEFAULT_FILE, RadarError, RadarFile, eol_flags, load_radar, radar_entries
from hulk_ops.dashboard.readmodel.radar_review import actions_for, dependents_of

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class V:
    version: str | None


@dataclass(frozen=True)
class Seen:
    name: str
    kind: str
    result: V | None


RADAR = RadarFile.model_validate({"components": [
    {"name": "Redis", "quadrant": "Data", "ring": "Adopt", "pinned": "7.2", "matches": {"kinds": ["redis"]},
     "lifecycle": [{"version": "7.2", "released": "2023-08-15", "eol": "2029-12-01"},
                   {"version": "7", "released": "2022-04-27", "eol": "2024-07-29"},
                   {"version": "8.0", "released": "2025-05-02", "eol": "2026-12-01"}]},
    {"name": "Kubernetes", "quadrant": "Compute", "ring": "Adopt", "matches": {"kinds": ["kubernetes"]},
     "lifecycle": [{"version": "1.34", "eol": "2026-10-27"}, {"version": "1.36", "eol": "2027-06-28"}]},
]})


def test_a_version_belongs_to_the_longest_cycle_it_starts_with() -> None:
    redis = RADAR.components[0]
    assert redis.release_of("7.2.4").version == "7.2"
    assert redis.release_of("7.0.15").version == "7"  # "7" covers what no longer cycle does
    assert redis.release_of("v8.0.1").version == "8.0"
    assert redis.release_of("6.2.14") is None and redis.release_of(None) is None and redis.release_of("x") is None


def test_flags_past_and_within_the_warning_window_naming_the_targets() -> None:
    seen = [Seen("cache-a", "redis", V("7.2.4")), Seen("cache-b", "redis", V("7.0.15")),
            Seen("cache-c", "redis", V("7.0.11")), Seen("edge", "redis", V("8.0.2")),
            Seen("k-old", "kubernetes", V("v1.34.2")), Seen("k-new", "kubernetes", V("v1.36.0")),
            Seen("silent", "redis", None)]
    flags = eol_flags(radar_entries(RADAR, seen), date(2026, 12, 4), warning_days=180)
    got = [(f.component, f.version, f.cycle, f.days_left, f.past, f.targets) for f in flags]
    assert got == [
        ("Redis", "7.0.11", "7", -858, True, ("cache-c",)),
        ("Redis", "7.0.15", "7", -858, True, ("cache-b",)),
        ("Kubernetes", "v1.34.2", "1.34", -38, True, ("k-old",)),
        ("Redis", "8.0.2", "8.0", -3, True, ("edge",)),
    ]
    assert flags[2].text() == "Kubernetes v1.34.2 (1.34) past its end of life since 2026-10-27 (38 days): k-old"
    soon = eol_flags(radar_entries(RADAR, seen), date(2026, 11, 30), warning_days=180)
    edge = next(f for f in soon if f.version == "8.0.2")
    assert (edge.past, edge.days_left) == (False, 1)
    assert "reaches its end of life on 2026-12-01 (in 1 days)" in edge.text()
    # 1.36 ends 2027-06-28: 206 days away, outside 180 days, inside 210
    assert not [f for f in soon if f.version == "v1.36.0"]
    assert [f.version for f in eol_flags(radar_entries(RADAR, seen), date(2026, 12, 4), 210)
            if f.component == "Kubernetes"] == ["v1.34.2", "v1.36.0"]


@pytest.mark.parametrize(("component", "words"), [
    ({"lifecycle": [{"version": "x"}]}, "no version number in 'x'"),
    ({"lifecycle": [{"version": "7", "released": "2024-01-01", "eol": "2023-01-01"}]}, "is before its release"),
    ({"lifecycle": [{"version": "7.2"}, {"version": "7.2"}]}, "appears twice"),
    ({"lifecycle": [{"version": "7", "eol": "soon"}]}, "lifecycle.0.eol"),
    ({"alternatives": [{"notes": "no name"}]}, "alternatives.0.name: Field required"),
])
def test_lifecycle_errors_name_the_file_and_field(tmp_path: Path, component: dict, words: str) -> None:
    path = tmp_path / "radar.yaml"
    path.write_text(yaml.safe_dump({"components": [{"name": "R", "quadrant": "Data", "ring": "Adopt", **component}]}))
    with pytest.raises(RadarError) as err:
        load_radar(path)
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value), str(err.value)


def test_the_shipped_radar_has_lifecycles_and_flags_what_this_machine_runs() -> None:
    radar = load_radar(DEFAULT_FILE)
    by_name = {c.name: c for c in radar.components}
    for name in ("PostgreSQL", "Redis", "Kubernetes", "Prometheus", "Neo4j"):
        assert by_name[name].lifecycle, name
        assert by_name[name].release_of(by_name[name].pinned) is not None, f"{name}: its pinned cycle is listed"
    # Debian 12's redis-server 7.0 ended with 7.4's release; Kubernetes 1.33 (pinned) ended 2026-06-28
    assert by_name["Redis"].release_of("7.0.15").eol == date(2024, 7, 29)
    assert by_name["Kubernetes"].release_of("1.33.5").eol == date(2026, 6, 28)
    bought = [c for c in radar.components if c.ring != "Hold" and c.matches.kinds and c.name != "HTTP services"]
    assert all(c.alternatives for c in bought), [c.name for c in bought if not c.alternatives]


def test_blast_radius_follows_depends_on_further_down() -> None:
    depends_on = {"api": ["db", "cache"], "web": ["api"], "report": ["db"], "batch": ["queue"], "db": []}
    assert dependents_of(["db"], depends_on) == ("api", "report", "web")
    assert dependents_of(["queue"], depends_on) == ("batch",)
    assert dependents_of(["web"], depends_on) == ()


def test_actions_touching_a_kind_come_from_the_action_types() -> None:
    assert "purge_stream" in actions_for(["nats"])
    assert {"launch_gpu", "stop_pod", "terminate_pod"} <= set(actions_for(["runpod"]))
    assert "scale" in actions_for(["kubernetes"])
    assert actions_for(["redis"]) == ()


def test_digest_bodies() -> None:
    seen = [Seen("edge", "redis", V("8.0.2"))]
    flags = eol_flags(radar_entries(RADAR, seen), date(2026, 12, 4), 180)
    generic = digest.render(flags, "generic", "2026-12-04", 1.0, "https://ops")
    assert generic["severity"] == "info" and generic["flags"][0]["targets"] == ["edge"]
    alerts = digest.render(flags, "alertmanager", "2026-12-04", 1.0, "https://ops")
    assert isinstance(alerts, list) and alerts[0]["labels"] == {
        "alertname": "HulkOpsVersionEndOfLife", "severity": "info", "component": "Redis", "version": "8.0.2"}
    assert alerts[0]["endsAt"] > alerts[0]["startsAt"]
    assert "edge" in digest.render(flags, "slack", "2026-12-04", 1.0, None)["blocks"][1]["text"]["text"]
