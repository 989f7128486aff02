"""Query pull without servers: series naming, result parsing, bounds, and how the scheduler runs Periodic work."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from dataclasses import dataclass

import pytest
import yaml

from hulk_ops.collectors.memory_store import MemoryResultStore
from hulk_ops.collectors.prometheus_pull import QueryJob, build_query_jobs, series_name
from hulk_ops.collectors.scheduler import Scheduler
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.config import parse_config
from hulk_ops.probes.prometheus_api import PromQueryError, parse_result


def test_series_name_sorts_labels_drops_the_metric_name_and_escapes() -> None:
    labels = {"__name__": "up", "job": "api", "instance": "a:9100", "path": 'say "hi"\\'}
    assert series_name("up_now", labels) == r'up_now{instance="a:9100",job="api",path="say \"hi\"\\"}'
    assert series_name("total", {}) == "total"
    assert series_name("total", {"__name__": "x"}) == "total"


def test_parse_result_of_each_result_type() -> None:
    assert parse_result([1700000000.5, "3"]) == [({}, 1700000000.5, 3.0)]
    vector = [{"metric": {"job": "a"}, "value": [1.0, "1"]}, {"metric": {}, "value": [1.0, "NaN"]}]
    parsed = parse_result(vector)
    assert parsed[0] == ({"job": "a"}, 1.0, 1.0) and math.isnan(parsed[1][2])
    assert parse_result([]) == []
    with pytest.raises(PromQueryError, match="range vector"):
        parse_result([{"metric": {}, "values": [[1.0, "1"]]}])
    with pytest.raises(PromQueryError, match="string"):
        parse_result([1.0, "hello"])


def query_job(max_series: int = 50, interval_s: float | None = None, store=None, metrics=None) -> QueryJob:
    query = {"name": "q", "promql": "up", "max_series": max_series}
    if interval_s:
        query["interval_s"] = interval_s
    config = parse_config(yaml.safe_dump({"targets": [
        {"name": "prom", "kind": "prometheus", "url": "http://127.0.0.1:9", "interval_s": 10, "timeout_s": 3,
         "queries": [query]}]}))
    [job] = build_query_jobs(config.targets, store or MemoryResultStore(), metrics or CollectorMetrics())
    return job


def test_points_are_bounded_and_skip_non_finite_values() -> None:
    job = query_job(max_series=3)
    samples = [({"i": f"{n:02d}"}, 5.0, float(n)) for n in range(10)] + [({"i": "nan"}, 5.0, math.nan)]
    points = job.points(samples)
    assert points == [('q{i="00"}', 5.0, 0.0), ('q{i="01"}', 5.0, 1.0), ('q{i="02"}', 5.0, 2.0)]
    job.client.close()


def test_query_interval_and_timeout() -> None:
    default, short = query_job(), query_job(interval_s=1.0)
    assert (default.interval_s, default.timeout_s, default.owner) == (10.0, 3.0, "prom")
    assert (short.interval_s, short.timeout_s) == (1.0, 1.0)  # a pull never outlives its interval
    default.client.close()
    short.client.close()


@dataclass(eq=False)
class FakePeriodic:
    name: str
    owner: str
    interval_s: float = 0.1
    timeout_s: float = 0.05
    running: bool = False
    behaviour: str = "ok"  # ok | crash | hang
    runs: int = 0
    closed: bool = False

    async def run(self) -> None:
        self.runs += 1
        if self.behaviour == "crash":
            raise RuntimeError("bug")
        if self.behaviour == "hang":
            await asyncio.sleep(30)

    async def close(self) -> None:
        self.closed = True


async def test_scheduler_runs_periodic_work_on_its_interval_and_survives_bad_work() -> None:
    metrics = CollectorMetrics()
    writer = BufferedWriter(MemoryResultStore(), metrics)
    ok = FakePeriodic("prom/ok", "prom")
    crash = FakePeriodic("prom/crash", "prom", behaviour="crash")
    hang = FakePeriodic("prom/hang", "prom", behaviour="hang")
    foreign = FakePeriodic("other/q", "other")
    scheduler = Scheduler([], writer, metrics, jitter_pct=0, owns=lambda target: target == "prom",
                          rng=random.Random(1), periodic=[ok, crash, hang, foreign])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(1.4, stop.set)
    await asyncio.wait_for(scheduler.run(stop), 3)
    await scheduler.cancel_running()
    # every 0.1 s for ~1.3 s after its first start (13 runs unloaded; a busy machine may delay some)
    assert 5 <= ok.runs <= 15
    assert 5 <= crash.runs <= 15  # a crash does not take it (or anything else) off the heap
    # the hard timeout (0.05 + 1 s) ended the first run after ~1.05 s; runs due meanwhile were skipped
    assert hang.runs in (1, 2)
    assert not hang.running
    assert metrics.skipped.labels("prom/hang")._value.get() >= 3
    assert foreign.runs == 0  # another replica owns that target


async def test_query_job_counts_a_store_failure() -> None:
    store, metrics = MemoryResultStore(), CollectorMetrics()
    job = query_job(store=store, metrics=metrics)

    async def failing_write(_points) -> None:
        raise ConnectionError("store is down")

    def answer(_promql: str, _timeout: float) -> list:
        return [({"job": "a"}, 7.0, 1.0)]

    store.write_series = failing_write  # type: ignore[method-assign]
    job.client.query = answer  # type: ignore[method-assign]
    await job.run()
    assert job.last_error == "store write failed: ConnectionError: store is down"
    assert metrics.query_failures.labels("q")._value.get() == 1
    del store.write_series  # back to the working fake
    await job.run()
    assert job.last_error is None and store.series == [('q{job="a"}', 7.0, 1.0)]
    assert metrics.query_failures.labels("q")._value.get() == 1
    assert metrics.query_series.labels("q")._value.get() == 1
    job.client.close()


async def test_client_calls_run_off_the_loop_and_a_stalled_server_holds_at_most_its_own_slots() -> None:
    from hulk_ops.probes.prometheus_api import WORKERS, PromBusy, PromClient

    client = PromClient("http://127.0.0.1:9", timeout_s=1.0)
    release = threading.Event()
    try:
        stalled = [asyncio.create_task(client.call(release.wait, 5)) for _ in range(WORKERS)]
        await asyncio.sleep(0.05)
        with pytest.raises(PromBusy, match=f"{WORKERS} earlier calls"):
            await client.call(release.wait, 5)
        for task in stalled:  # callers give up; their threads stay blocked, still holding the slots
            task.cancel()
        await asyncio.gather(*stalled, return_exceptions=True)
        with pytest.raises(PromBusy):
            await client.call(release.wait, 5)
        release.set()
        for _ in range(100):  # slots are back once the threads end (within ms; bounded at ~2 s)
            try:
                assert await client.call(sum, [1, 2, 3]) == 6
                break
            except PromBusy:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the slots were not released")
        with pytest.raises(ZeroDivisionError):
            await client.call(divmod, 1, 0)
    finally:
        release.set()
        client.close()
