"""Window and filters live in the URL: a link with them opens the page as it was seen, and changing them on the
page rewrites the URL (the default leaves it bare)."""

from __future__ import annotations

import time

import pytest

from hulk_ops.core.config import load_config
from tests.seed import result, seed

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]


@pytest.fixture
def config_path(write_config):
    path = write_config([{"name": "cache", "kind": "redis", "url": "redis://127.0.0.1:1"},
                         {"name": "db", "kind": "postgres", "url": "postgresql://127.0.0.1:1/x"}])
    now = time.time()
    seed(load_config(path), [result("cache", "redis", "up", now - 30, 1.0),
                             result("db", "postgres", "up", now - 30, 2.0)])
    return path


def test_latency_window_kind_and_stat_from_and_to_the_url(config_path, open_page):
    at = open_page(config_path, "latency", query={"window": "30 d", "kind": "redis", "stat": "p99"})
    assert at.session_state["latency_window"] == "30 d"
    assert at.selectbox(key="latency_kind").value == "redis"
    assert at.session_state["latency_stat"] == "p99"
    assert "hour and day summaries" in "\n".join(c.value for c in at.caption)
    at.selectbox(key="latency_kind").set_value("all kinds").run()
    assert "kind" not in at.query_params and at.query_params["window"] in ("30 d", ["30 d"])


def test_a_value_the_page_does_not_offer_is_ignored(config_path, open_page):
    at = open_page(config_path, "latency", query={"window": "11 y", "kind": "nope"})
    assert at.session_state["latency_window"] == "1 h" and at.selectbox(key="latency_kind").value == "all kinds"
    assert "window" not in at.query_params and "kind" not in at.query_params


def test_custom_range_cost_capacity_target_and_incidents_windows(config_path, open_page):
    at = open_page(config_path, "latency", query={"window": "custom", "from": "2026-11-20", "to": "2026-11-22"})
    first, last = at.session_state["latency_range"]
    assert (first.isoformat(), last.isoformat()) == ("2026-11-20", "2026-11-22")
    assert at.query_params["from"] in ("2026-11-20", ["2026-11-20"])
    assert at.query_params["to"] in ("2026-11-22", ["2026-11-22"])
    for page, key, value in (("cost", "cost_window", "6 h"), ("capacity", "capacity_window", "30 d"),
                             ("incidents", "timeline_window", "1 h")):
        at = open_page(config_path, page, query={"window": value})
        assert not at.exception, page
        assert at.session_state[key] == value, page
    at = open_page(config_path, "target", query={"target": "db", "window": "24 h"})
    assert at.session_state["target_window"] == "24 h"
    assert at.query_params["target"] in ("db", ["db"])
