"""Scheduler behaviour on scripted probes and the in-memory store (no servers)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hulk_ops.collectors.breaker import TargetBreaker
from hulk_ops.collectors.grid import TICK_S, grid_after
from hulk_ops.collectors.memory_store import MemoryResultStore
from hulk_ops.collectors.scheduler import Job, Scheduler
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from tests.unit.fakes import ScriptedProbe, settings


def make(jobs_spec: list[tuple[str, float, float, float]], failures: int = 3, reset_s: float = 0.5):
    store = MemoryResultStore()
    metrics = CollectorMetrics()
    writer = BufferedWriter(store, metrics, flush_interval_s=0.05)
    jobs = []
    for name, interval, timeout, delay in jobs_spec:
        s = settings(name, interval_s=interval, timeout_s=timeout)
        jobs.append(Job(s, ScriptedProbe(s, delay_s=delay), TargetBreaker(name, failures, reset_s)))
    return store, metrics, writer, Scheduler(jobs, writer, metrics, concurrency=50, jitter_pct=0)


async def run_for(scheduler: Scheduler, writer: BufferedWriter, seconds: float) -> None:
    stop = asyncio.Event()
    writer.start()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    await scheduler.cancel_running()
    await writer.stop()


async def test_a_stalled_target_does_not_delay_the_others() -> None:
    store, _metrics, writer, scheduler = make([
        ("fast-a", 0.2, 0.15, 0.0),
        ("fast-b", 0.2, 0.15, 0.0),
        ("stalled", 0.2, 0.15, 10.0),  # never answers within its timeout
    ], failures=100)
    await run_for(scheduler, writer, 2.1)
    fast = [len(store.history["fast-a"]), len(store.history["fast-b"])]
    # first runs are spread over <= 0.2 s, then every 0.2 s: about 10 runs in 2.1 s
    assert min(fast) >= 8, fast
    stalled = store.history["stalled"]
    assert len(stalled) >= 7
    assert all(r.status == "down" and r.error == "timed out after 0.1 s" for r in stalled)
    assert scheduler.max_lag < 0.15


async def test_state_changes_become_events_once() -> None:
    store, _m, writer, scheduler = make([("db", 0.1, 0.05, 0.0)], failures=100)
    probe = scheduler.jobs[0].probe
    writer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.35)
    probe.failing = "connection refused (127.0.0.1:1)"
    await asyncio.sleep(0.35)
    probe.failing = None
    await asyncio.sleep(0.35)
    stop.set()
    await task
    await writer.stop()
    changes = [(e.previous, e.current) for e in store.events]
    assert changes == [("up", "down"), ("down", "up")]
    assert store.events[0].error == "connection refused (127.0.0.1:1)"


async def test_breaker_opens_skips_probes_then_half_opens_and_closes() -> None:
    store, metrics, writer, scheduler = make([("flaky", 0.05, 0.04, 0.0)], failures=3, reset_s=0.4)
    job = scheduler.jobs[0]
    job.probe.failing = "boom"
    writer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.35)
    assert job.breaker.view().state == "opened"
    calls_when_open = job.probe.calls
    assert calls_when_open == 3  # exactly the failures that opened it
    assert job.breaker.view().failures == 3
    assert metrics.registry.get_sample_value("hulk_ops_breaker_open", {"target": "flaky"}) == 1
    latest = scheduler.jobs[0].last_result
    assert latest is not None and latest.error.startswith("circuit breaker open")
    job.probe.failing = None  # the fault ends; after reset_s one trial probe closes it
    await asyncio.sleep(0.5)
    stop.set()
    await task
    await writer.stop()
    assert job.breaker.view().state == "closed"
    assert job.probe.calls > calls_when_open
    assert store.latest["flaky"].status == "up"
    assert metrics.registry.get_sample_value("hulk_ops_breaker_open", {"target": "flaky"}) == 0


async def test_probe_bug_becomes_a_down_result_not_a_crash() -> None:
    store, _m, writer, scheduler = make([("buggy", 0.1, 0.05, 0.0)], failures=100)
    scheduler.jobs[0].probe.raise_type = KeyError
    await run_for(scheduler, writer, 0.3)
    result = store.latest["buggy"]
    assert result.status == "down"
    assert "KeyError" in result.error


async def test_breaker_transitions_are_logged_and_flag_a_publish() -> None:
    _store, _m, _writer, scheduler = make([("flaky", 0.05, 0.04, 0.0)], failures=2, reset_s=0.2)
    job = scheduler.jobs[0]
    job.probe.failing = "boom"
    assert await scheduler.probe_job(job) is not None and not scheduler.breakers_changed.is_set()  # 1 failure
    await scheduler.probe_job(job)
    assert job.breaker.state == "opened" and scheduler.breakers_changed.is_set()
    scheduler.breakers_changed.clear()
    skipped = await scheduler.probe_job(job)  # still open: skipped, no change
    assert skipped.error.startswith("circuit breaker open") and not scheduler.breakers_changed.is_set()
    job.probe.failing = None
    await asyncio.sleep(0.25)
    await scheduler.probe_job(job)  # the trial: half-open, then closed
    assert job.breaker.state == "closed" and scheduler.breakers_changed.is_set()
    assert [state for _t, state in job.breaker.transitions] == ["opened", "half-opened", "closed"]


async def test_only_breakers_of_targets_this_replica_probes_are_published() -> None:
    import time

    from hulk_ops.collectors.collector import Collector
    from hulk_ops.entrypoints.service import breaker_states

    store, metrics, writer, scheduler = make([("mine", 1.0, 0.5, 0.0), ("other", 1.0, 0.5, 0.0)])
    mine, other = scheduler.jobs
    mine.last_run_at = time.monotonic()
    other.last_run_at = None  # never run here (another replica owns it)
    collector = Collector(config=None, store=store, writer=writer, scheduler=scheduler, metrics=metrics)  # type: ignore[arg-type]
    assert set(breaker_states(collector)) == {"mine"}
    mine.last_run_at = time.monotonic() - 60  # handed over a minute ago
    assert breaker_states(collector) == {}


def test_rejected_probes_leave_no_frames_on_the_open_breaker() -> None:
    """purgatory raises its long-lived open state object itself: each `raise` prepended this call's frames to
    that object's traceback, so every rejected probe kept its frames alive while the breaker stayed open."""
    breaker = TargetBreaker("t", failures=1, reset_s=3600)
    breaker.record(True, "boom")
    assert breaker.state == "opened"
    for _ in range(50):
        assert not breaker.allow()
    assert breaker._ctx._state.__traceback__ is None


async def test_replace_jobs_while_running_retires_plans_and_keeps() -> None:
    """A reload's swap: the kept job carries on (same object, runs keep counting), the dropped one stops, the new
    one starts within its interval; an empty set idles until jobs come."""
    store, _metrics, writer, scheduler = make([("kept", 0.2, 0.1, 0.0), ("dropped", 0.2, 0.1, 0.0)])
    kept, dropped = scheduler.jobs
    stop = asyncio.Event()
    writer.start()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.7)
    s = settings("new", interval_s=0.2, timeout_s=0.1)
    new = Job(s, ScriptedProbe(s), TargetBreaker("new", 3, 0.5))
    scheduler.replace_jobs([kept, new], [])
    runs_dropped, runs_kept = dropped.runs, kept.runs
    assert dropped.retired and not kept.retired
    await asyncio.sleep(0.8)
    assert dropped.runs <= runs_dropped + 1  # at most a run already under way finishes
    assert kept.runs >= runs_kept + 3 and new.runs >= 3
    scheduler.replace_jobs([], [])
    await asyncio.sleep(0.3)
    idle = (kept.runs, new.runs)
    await asyncio.sleep(0.5)
    assert (kept.runs, new.runs) == idle
    scheduler.replace_jobs([kept], [])
    await asyncio.sleep(0.6)
    assert kept.runs >= idle[0] + 2
    stop.set()
    await asyncio.wait_for(task, 2)
    await scheduler.cancel_running()
    await writer.stop()
    assert len(store.history["new"]) >= 3


class _Overrunning(ScriptedProbe):
    """A probe whose check() ignores its own timeout (a plugin's bug): only the scheduler's hard timeout ends it."""

    async def check(self):  # type: ignore[override]
        self.calls += 1
        await asyncio.sleep(30)
        raise AssertionError("not reached: the hard timeout cancels the run")


async def test_a_probe_that_ignores_its_timeout_is_cut_by_the_hard_timeout_and_reported_down() -> None:
    store, _metrics, writer, scheduler = make([("ok", 0.2, 0.1, 0.0)], failures=100)
    s = settings("hung", interval_s=0.5, timeout_s=0.1)
    scheduler.jobs.append(Job(s, _Overrunning(s), TargetBreaker("hung", 100, 0.5)))
    await run_for(scheduler, writer, 3.0)
    hung = store.history["hung"]
    # cut at timeout + 1 s (1.1 s), found by a sweep every 0.2 s: at least one result in 3 s, each one down
    assert hung and all(r.status == "down" and r.error == "timed out after 0.1 s (probe overran its timeout)"
                        for r in hung), hung
    assert len(store.history["ok"]) >= 10  # the other target kept its interval meanwhile
    assert not scheduler._deadlines and not scheduler._overran  # nothing left behind by finished runs


async def test_a_run_cancelled_by_the_shutdown_is_not_turned_into_a_result() -> None:
    store, _metrics, writer, scheduler = make([], failures=100)
    s = settings("hung", interval_s=10, timeout_s=5)
    scheduler.jobs.append(Job(s, _Overrunning(s), TargetBreaker("hung", 100, 0.5)))
    await run_for(scheduler, writer, 2.5)  # stops while the run is under way: cancel_running() cancels it
    assert scheduler.jobs[0].probe.calls == 1
    assert "hung" not in store.history  # a cancelled run records nothing
    assert not scheduler._deadlines and not scheduler._overran


@given(now=st.floats(0, 1e7, allow_nan=False), period=st.sampled_from([TICK_S, 0.025, 0.2, 0.25, 1.0, 0.33]))
def test_periodic_work_wakes_on_the_grid_after_now(now: float, period: float) -> None:
    """The next wake-up of periodic work: a multiple of its period, after now, within one period."""
    at = grid_after(now, period)
    assert now < at <= now + period + 1e-6
    assert abs(at / period - round(at / period)) < 1e-6
    assert grid_after(at, period) == pytest.approx(at + period)  # on the grid: the next one, not the same


async def test_runs_start_at_the_grid_point_nearest_their_plan() -> None:
    """Starts move to the nearest point of the wake-up grid: never more than half a tick early (late only when
    the loop is), so runs planned close together share one wake-up; a job probed faster than the grid makes
    the grid finer."""
    offsets: list[float] = []

    class Recording(Scheduler):
        async def _run_job(self, job: Job, planned: float) -> None:
            offsets.append(asyncio.get_running_loop().time() - planned)
            await super()._run_job(job, planned)

    store = MemoryResultStore()
    metrics = CollectorMetrics()
    writer = BufferedWriter(store, metrics, flush_interval_s=0.2)
    jobs = [Job(s, ScriptedProbe(s), TargetBreaker(s.name, 3, 1.0))
            for s in (settings(f"t{i}", interval_s=0.3 + i / 100, timeout_s=0.2) for i in range(20))]
    scheduler = Recording(jobs, writer, metrics, concurrency=50, jitter_pct=5)
    assert scheduler.tick == TICK_S
    await run_for(scheduler, writer, 2.0)
    assert len(offsets) > 60
    assert min(offsets) >= -TICK_S / 2 - 0.002, sorted(offsets)[:5]
    assert sum(1 for off in offsets if off < 0) > len(offsets) / 5  # nearest, not the next point
    fast = settings("fast", interval_s=0.05, timeout_s=0.04)
    scheduler.replace_jobs([*jobs, Job(fast, ScriptedProbe(fast), TargetBreaker("fast", 3, 1.0))], [])
    assert scheduler.tick == 0.025
