"""An incident staged through the simulators and recorded by the real collector: the vector store goes down,
the services on top of it fail with it, and the Incidents page names the vector store as the root cause."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.entrypoints.service import run_collector
from sandbox.k8s_sim import DEFAULT_TOKEN
from tests.views_support import texts

pytest_plugins = ["tests.fixtures_views", "tests.fixtures_qdrant", "tests.fixtures_k8s"]


def test_root_cause_of_a_staged_outage_is_named(qdrant_sim, k8s_sim, write_config, open_page) -> None:
    path = write_config([
        {"name": "vectors", "kind": "qdrant", "url": qdrant_sim.url, "interval_s": 1, "timeout_s": 1},
        {"name": "search-api", "kind": "http", "url": f"{qdrant_sim.url}/healthz", "interval_s": 1,
         "timeout_s": 1, "depends_on": ["vectors"]},
        {"name": "recommender", "kind": "http", "url": f"{qdrant_sim.url}/readyz", "interval_s": 1,
         "timeout_s": 1, "depends_on": ["search-api"]},
        {"name": "k8s-main", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN, "interval_s": 1,
         "timeout_s": 1},
    ], collector={"breaker": {"failures": 100}})
    config = load_config(path)
    model = ReadModel(config)

    def statuses() -> dict[str, str]:
        return {v.name: v.status for v in model.target_views()}

    with running_collector(config):  # it keeps probing while the page renders, as in production
        wait_until(lambda: set(statuses().values()) == {"up"}, 20)
        fault_at = time.time()
        qdrant_sim.set_fault("down")  # the listener closes: connection refused for everyone on it
        wait_until(lambda: {k: v for k, v in statuses().items() if k != "k8s-main"} == {
            "vectors": "down", "search-api": "down", "recommender": "down"}, 15)
        assert statuses()["k8s-main"] == "up"
        page = open_page(path, "incidents")

    body = texts(page)
    assert "Open incidents (1)" in body
    assert "probable root cause **vectors** (down) · 2 dependent(s)" in body
    assert "Probable root cause: :red[■ **DOWN**] **vectors** (qdrant)" in body
    dependents = page.dataframe[0].value
    assert list(dependents["target"]) == ["recommender", "search-api"]
    assert all("connection refused" in e for e in dependents["error"])
    before = page.dataframe[1].value  # the 30 minutes before: ends with the root going down
    assert (before["target"].iloc[0], before["what"].iloc[0]) == ("vectors", "up → down")
    label = next(e for e in page.expander if "vectors" in e.label).label
    started = time.strptime(label.rsplit("since ", 1)[1], "%Y-%m-%d %H:%M:%S UTC")
    assert abs(time.mktime(started) - time.mktime(time.gmtime(fault_at))) < 10  # started when the fault was staged


def wait_until(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


@contextlib.contextmanager
def running_collector(config):
    """The real collector (`run_collector`) on its own event loop in a thread, stopped on exit."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(run_collector(config, metrics_port=None, stop=stop),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        assert not thread.is_alive(), "the collector did not stop"
        loop.close()
