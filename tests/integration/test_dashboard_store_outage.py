"""The dashboard while its store (a private Redis) really goes away and comes back: a banner that says since
when, no traceback, and the normal page again by itself once Redis answers (same process, same read model)."""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from hulk_ops.core.config import load_config
from hulk_ops.core.model import StateChange
from tests.seed import result, seed
from tests.views_support import metrics, set_last_write, texts

pytest_plugins = ["tests.fixtures_outage", "tests.fixtures_views"]


@pytest.fixture
def config_path(tmp_path: Path, private_redis) -> Path:
    path = tmp_path / "dash.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": private_redis.url, "prefix": "dash:"},
        "dashboard": {"refresh_s": 5},
        "targets": [
            {"name": "cache", "kind": "redis", "url": "redis://h:1", "interval_s": 10},
            {"name": "db", "kind": "postgres", "url": "postgresql://h:1/x", "interval_s": 10},
        ],
    }), encoding="utf-8")
    config = load_config(path)
    now = time.time()
    seed(config, [result("cache", "redis", "up", now - 1, latency_ms=0.5),
                  result("db", "postgres", "down", now - 1, error="connection refused (10.0.0.5:5432)")],
         [StateChange("db", "postgres", "up", "down", "connection refused (10.0.0.5:5432)",
                      result("db", "postgres", "down", now - 1).observed_at)])
    set_last_write(config, now)
    return path


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize(("page", "normal"), [
    ("", lambda at: metrics(at)["Down"] == "1" and "**db**" in texts(at)),
    ("health", lambda at: "hulk-ops health" in texts(at) and not at.error),
], ids=["overview", "health"])
def test_banner_while_the_store_is_down_then_the_page_by_itself(open_page, private_redis, config_path,
                                                                page, normal) -> None:
    at = open_page(config_path, page)
    assert not at.error and normal(at), texts(at)

    private_redis.stop()
    stopped = time.time()
    time.sleep(1.2)
    rerun(at)  # what the page's own refresh does
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    banner = errors[0]
    assert banner.startswith("**Store unreachable since ")
    since = re.search(r"since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(", banner)
    assert since and abs(calendar.timegm(time.strptime(since[1], "%Y-%m-%d %H:%M:%S")) - stopped) <= 3, banner
    assert "Showing nothing" in banner and "reads again every 5 s by itself" in banner
    assert f"127.0.0.1:{private_redis.port}" in banner
    assert not at.metric and "**db**" not in texts(at)  # nothing it could not vouch for

    time.sleep(1.1)
    rerun(at)  # still down: the same outage, still dated from its first failed read
    assert since[0] in at.error[0].value

    private_redis.start()
    rerun(at)
    assert not at.error, [e.value for e in at.error]
    assert normal(at), texts(at)
