"""A real fault opens a breaker and the dashboard shows it, live; when the fault ends it shows it closed.

The collector runs in a thread of its own (its own event loop) against a Redis target behind a
`FaultProxy`, while Streamlit's AppTest renders the Overview, Target detail and Health pages from the
store in the test thread, as a browser would while the collector runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hulk_ops.core.config import Config, load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.entrypoints.service import run_collector
from tests.views_support import metrics, texts
from tests.waiting import wait_for

pytest_plugins = ["tests.fixtures_views", "tests.fixtures_faults"]
FAILURES, RESET_S = 2, 1.5
OPEN = {"opened", "half-opened"}


class CollectorThread:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="collector", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await run_collector(self.config, metrics_port=None, stop=self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the collector did not stop"
        assert self.error is None, self.error


@pytest.fixture
def live(services: Any, write_config: Any, fault_proxy: Any, store_redis_url: str) -> Iterator[dict[str, Any]]:
    proxy = fault_proxy(services.endpoints["redis"].url, name="cache")
    path = write_config([
        {"name": "cache", "kind": "redis", "url": proxy.url_for(services.endpoints["redis"].url),
         "interval_s": 1, "timeout_s": 0.5},
        {"name": "db", "kind": "postgres", "url": services.endpoints["postgres"].url, "interval_s": 1},
    ], collector={"breaker": {"failures": FAILURES, "reset_s": RESET_S}})
    config = load_config(path)
    collector = CollectorThread(config)
    collector.thread.start()
    client = redis.Redis.from_url(store_redis_url)
    try:
        yield {"path": path, "proxy": proxy, "model": ReadModel(config, client)}
    finally:
        collector.stop()
        client.close()


def test_breaker_opened_by_a_refused_target_shows_on_the_pages_and_closes_after(live, open_page) -> None:
    import streamlit as st

    model: ReadModel = live["model"]

    def statuses() -> dict[str, str]:
        return {v.name: v.status for v in model.target_views()}

    assert wait_for(lambda: statuses() == {"cache": "up", "db": "up"}, 15), statuses()
    faulted = time.monotonic()
    live["proxy"].refuse()
    assert wait_for(lambda: model.breakers().get("cache", {}).get("state") == "opened", 10), model.breakers()
    # FAILURES downs one interval apart (+ jitter), the last one's duration, published at once (no heartbeat wait)
    assert time.monotonic() - faulted <= FAILURES * 1.05 + 1.0, time.monotonic() - faulted

    # every new connection is refused now; a probe that raced the switch on a loaded machine may have had its
    # connection accepted and then reset instead, so wait for the refusal to be the latest result shown
    def latest_error() -> str:
        view = next(v for v in model.target_views() if v.name == "cache")
        return (view.result.error or "") if view.result else ""

    assert wait_for(lambda: "connection refused" in latest_error(), 10), latest_error()
    # a page takes a moment to render, the breaker meanwhile may be in a (failing) half-open trial
    overview = open_page(live["path"])
    body = texts(overview)
    assert ":red[circuit breaker opened]" in body or ":red[circuit breaker half-opened]" in body, body
    assert "connection refused" in body
    target = open_page(live["path"], "target", query={"target": "cache"})
    assert metrics(target)["Circuit breaker"] in OPEN
    health = open_page(live["path"], "health")
    assert "Circuit breakers open (1)" in texts(health)
    table = next(d.value for d in health.dataframe if "next trial" in d.value.columns)
    assert list(table["target"]) == ["cache"] and set(table["state"]) <= OPEN

    lifted = time.monotonic()
    live["proxy"].pass_through()
    assert wait_for(lambda: model.breakers().get("cache", {}).get("state") == "closed"
                    and statuses()["cache"] == "up", 10), (model.breakers(), statuses())
    # the open period (at most RESET_S left), then the trial at the next planned start, then the publish
    assert time.monotonic() - lifted <= RESET_S + 1.05 + 1.0, time.monotonic() - lifted
    st.cache_resource.clear()
    health = open_page(live["path"], "health")
    assert "Every breaker is closed: all targets are being probed." in texts(health)
    overview = open_page(live["path"])
    assert "circuit breaker" not in texts(overview)
