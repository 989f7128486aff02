"""The radar's fitness and readiness read from a real store: incidents where a component was the root cause
(from the per-target event streams), the blast radius of a migration, and what the report prints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hulk_ops.core.config import load_config
from hulk_ops.core.model import StateChange, iso
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.dashboard.readmodel.radar_review import root_incidents
from tests.seed import result, seed

pytestmark = pytest.mark.integration

DAY = 86_400.0


def change(target: str, kind: str, previous: str, current: str, ts: float) -> StateChange:
    return StateChange(target, kind, previous, current, None, iso(datetime.fromtimestamp(ts, UTC)))  # type: ignore[arg-type]


def test_root_cause_incidents_count_only_failures_no_dependency_explains(write_config) -> None:
    path = write_config([
        {"name": "db", "kind": "postgres", "url": "postgresql://h/x"},
        {"name": "api", "kind": "http", "url": "http://api/", "depends_on": ["db"]},
    ])
    config = load_config(path)
    now = 1_790_000_000.0
    start = now - 30 * DAY
    seed(config, [result("db", "postgres", "up", now - 5), result("api", "http", "up", now - 5)], [
        change("db", "postgres", "up", "down", start - DAY),         # before the window: not counted
        change("db", "postgres", "down", "up", start - DAY + 60),
        change("db", "postgres", "up", "down", now - 10 * DAY),      # db fails: a root
        change("api", "http", "up", "down", now - 10 * DAY + 30),    # api fails behind it: explained
        change("db", "postgres", "down", "up", now - 10 * DAY + 600),
        change("api", "http", "down", "up", now - 10 * DAY + 630),
        change("api", "http", "up", "degraded", now - 2 * DAY),      # api alone: a root of its own
        change("api", "http", "degraded", "down", now - 2 * DAY + 60),  # still the same failure
        change("api", "http", "down", "up", now - 2 * DAY + 120),
    ])
    model = ReadModel(config)
    depends_on = {t.name: t.depends_on for t in config.targets}
    assert root_incidents(model, ["db"], depends_on, start, now) == 1
    assert root_incidents(model, ["api"], depends_on, start, now) == 1
    assert root_incidents(model, ["db", "api"], depends_on, start - 2 * DAY, now) == 3
