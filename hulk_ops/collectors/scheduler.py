"""The asyncio scheduler: every target on its own interval, none able to delay another.

A min-heap of planned start times drives one loop. Each run is its own task, bounded by a global
semaphore (`concurrency`) and a hard timeout; starts are fixed-rate (no drift) plus a random
jitter. The loop wakes on the grid of `TICK_S` (hulk_ops/collectors/grid.py) and starts each run at the grid
point nearest its plan, at most half a tick early or late: runs that start together answer together and
share the wake-ups that follow (at 100 probes a second, most of a collector's CPU). The hard timeouts
are enforced by one sweep every `SWEEP_S` over the runs under way, not by a timer per run; the sweep, the
1 s lag tick and the writer's flushes fall on the same grid. A per-target circuit breaker skips targets that
keep failing and reports them down with the breaker's reason. Results go to the `BufferedWriter`;
state changes become events.

Other periodic work tied to a target (a `Periodic`, e.g. a Prometheus query pull) shares the same
heap, semaphore, jitter, replica ownership (by its `owner` target) and skip-if-still-running rule,
under the same hard timeout (its `timeout_s` + 1 s); it records its own outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

from hulk_ops.collectors.breaker import TargetBreaker
from hulk_ops.collectors.grid import TICK_S, grid_after
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import ProbeResult, StateChange, iso, utcnow
from hulk_ops.observe import tracing
from hulk_ops.probes.base import Probe

log = structlog.get_logger("hulk_ops.scheduler")
FIRST_SPREAD_S = 2.0  # first runs are spread over at most this window, so a start is not a burst
LAGS_MAX = 200_000  # start lags kept between two heartbeats (a heartbeat summarises and clears them)
SWEEP_S = 0.2  # how often probes past their hard timeout are looked for (they are cut at most this late)


@dataclass(eq=False, slots=True)
class Job:
    settings: TargetSettings
    probe: Probe
    breaker: TargetBreaker
    previous_status: str | None = None
    running: bool = False
    runs: int = 0
    last_run_at: float | None = None  # monotonic time of the newest recorded result
    last_result: ProbeResult | None = field(default=None, repr=False)
    series: JobSeries | None = field(default=None, repr=False)  # its metric children, looked up once
    retired: bool = False  # removed or replaced by a config reload: its planned runs are dropped

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def owner(self) -> str:
        return self.settings.name

    @property
    def interval_s(self) -> float:
        return self.settings.interval_s


class JobSeries:
    """A job's labelled metric children: `.labels()` is a dict lookup under a lock, five of them per probe."""

    __slots__ = ("breaker_open", "breaker_shown", "duration", "kind", "last_duration", "metrics", "name", "probes")

    def __init__(self, metrics: CollectorMetrics, name: str, kind: str) -> None:
        self.metrics, self.name, self.kind = metrics, name, kind
        self.probes: dict[str, Any] = {}  # by status, created when first seen (as `.labels()` would)
        self.duration = metrics.duration.labels(kind)
        self.last_duration = metrics.last_duration.labels(name, kind)
        self.breaker_open = metrics.breaker_open.labels(name)
        self.breaker_shown: int | None = None  # the value breaker_open was last set to (set when it changes)


class Periodic(Protocol):
    """Work run on an interval beside the probes. `run()` bounds itself by `timeout_s` and never raises."""

    name: str
    owner: str  # the target it belongs to: it runs on the replica that owns that target
    interval_s: float
    timeout_s: float
    running: bool

    async def run(self) -> None: ...

    async def close(self) -> None: ...


class Scheduler:
    def __init__(
        self,
        jobs: list[Job],
        writer: BufferedWriter,
        metrics: CollectorMetrics,
        concurrency: int = 256,
        jitter_pct: float = 5.0,
        owns: Callable[[str], bool] | None = None,
        rng: random.Random | None = None,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        self.jobs = jobs
        self.periodic = list(periodic)
        self.writer = writer
        self.metrics = metrics
        self.semaphore = asyncio.Semaphore(concurrency)
        self.jitter_pct = jitter_pct
        self.owns = owns or (lambda _name: True)
        self.rng = rng or random.Random()
        self.tasks: set[asyncio.Task[None]] = set()
        self.started_at = time.time()
        self.last_probe_at: float | None = None
        self.probes_done = 0
        self._window_lag = 0.0
        self.max_lag = 0.0
        self.current_lag = 0.0  # the lag of the last full second (what hulk_ops_cycle_lag_seconds shows)
        self.heartbeat_mark = (time.monotonic(), 0)  # (when, probes_done) at the previous heartbeat
        self.breakers_changed = asyncio.Event()  # a breaker changed state: the service publishes at once
        self.lags: list[float] = []  # how far from plan (early or late) probes started since the last heartbeat (s)
        self._heap: list[tuple[float, int, float, Job | Periodic]] = []
        self.tick = tick_for([*jobs, *self.periodic])  # the wake-up grid: starts move to its nearest point
        self._seq = 0
        self._wake: asyncio.Event | None = None  # set by replace_jobs (and stop) while run() waits
        self.ticked_at: float | None = None  # monotonic time of the last 1 s tick: the loop runs (/healthz)
        metrics.last_cycle.set_function(lambda: self.last_probe_at or 0.0)  # read when scraped, not per probe
        self._deadlines: dict[asyncio.Task[Any], float] = {}  # probe runs under way -> hard deadline (loop time)
        self._overran: set[asyncio.Task[Any]] = set()  # runs the sweep cancelled for overrunning

    def first_due(self, job: Job | Periodic, now: float) -> float:
        """Spread first runs deterministically by name over min(interval, FIRST_SPREAD_S)."""
        return now + _fraction(job.name) * min(job.interval_s, FIRST_SPREAD_S)

    def steady_base(self, job: Job | Periodic, now: float, first: float) -> float:
        """The base of the first run, such that the second run (base + interval) and every later one sit at
        the target's phase: spread by name over the whole interval, so 10,000 targets at 15 s are ~667
        starts a second and not a burst every interval. The second run comes 0.5 to 1.5 intervals after
        the first."""
        interval = job.interval_s
        second = now + _fraction(job.name) * interval
        while second < first + interval / 2:
            second += interval
        return second - interval

    def _jitter(self, job: Job | Periodic) -> float:
        return self.rng.uniform(0, job.interval_s * self.jitter_pct / 100.0)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        heap: list[tuple[float, int, float, Job | Periodic]] = []
        self._heap = heap
        self._plan([*self.jobs, *self.periodic], loop.time())
        ticker = asyncio.create_task(self._lag_ticker(stop), name="lag-ticker")
        sweeper = asyncio.create_task(self._sweep_overruns(stop), name="overrun-sweep")
        relay = asyncio.create_task(_relay(stop, wake), name="stop-relay")
        horizon = 0.0  # runs planned up to this loop time are started now
        try:
            while not stop.is_set():
                if not heap:
                    wake.clear()
                    await wake.wait()
                    continue
                planned, seq, base, job = heap[0]
                if planned >= horizon:
                    now = loop.time()
                    tick = self.tick
                    point = round(planned / tick) * tick  # the grid point nearest the plan
                    if point > now:
                        # sleep to it: the runs whose nearest point it is start together (at most half a tick
                        # early or late: a run planned at 12.34 s starts at 12.3 s, one planned at 12.37 s at 12.4 s)
                        wake.clear()
                        timer = loop.call_at(point, wake.set)
                        await wake.wait()  # or stopped, or the job set changed: look at the heap again
                        timer.cancel()
                        # woken at the point (uvloop's clock counts whole ms), or earlier by a reload: plan again
                        horizon = point + tick / 2 if loop.time() >= point - 0.001 else 0.0
                        continue
                    horizon = now + tick / 2
                heapq.heappop(heap)
                if getattr(job, "retired", False):
                    continue
                next_base = base + job.interval_s
                heapq.heappush(heap, (next_base + self._jitter(job), seq, next_base, job))
                if not self.owns(job.owner):
                    continue
                if job.running:
                    self.metrics.skipped.labels(job.name).inc()
                    continue
                job.running = True
                run = self._run_job(job, planned) if isinstance(job, Job) else self._run_periodic(job, planned)
                task = loop.create_task(run, name=f"probe:{job.name}")
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            ticker.cancel()
            sweeper.cancel()
            relay.cancel()
            self._wake = None

    def _plan(self, jobs: Sequence[Job | Periodic], now: float) -> None:
        for job in jobs:
            first = self.first_due(job, now)
            self._seq += 1
            heapq.heappush(self._heap, (first, self._seq, self.steady_base(job, now, first), job))

    def replace_jobs(self, jobs: list[Job], periodic: Sequence[Periodic]) -> None:
        """Swap in a new job set (a config reload): jobs no longer in it are retired (their planned runs are
        dropped, a run under way finishes), jobs new to it are planned from now; the same Job objects carry
        on untouched (their breaker, history and phase)."""
        keep = {id(j) for j in [*jobs, *periodic]}
        old: list[Job | Periodic] = [*self.jobs, *self.periodic]
        known = {id(j) for j in old}
        for job in old:
            if id(job) not in keep:
                setattr(job, "retired", True)  # noqa: B010  (Periodic implementations are plain objects: set on them too)
        new: list[Job | Periodic] = [*jobs, *periodic]
        added = [j for j in new if id(j) not in known]
        for job in added:  # a job retired by an earlier swap may come back
            setattr(job, "retired", False)  # noqa: B010
        self.jobs, self.periodic = jobs, list(periodic)
        self.tick = tick_for([*jobs, *self.periodic])
        if self._wake is not None:  # running: plan the new ones now and let the loop look again
            self._heap[:] = [entry for entry in self._heap if not getattr(entry[3], "retired", False)]
            heapq.heapify(self._heap)
            self._plan(added, asyncio.get_running_loop().time())
            self._wake.set()

    async def cancel_running(self, grace_s: float = 0.0, wait_s: float = 1.0) -> None:
        """At shutdown: give in-flight probes `grace_s`, then cancel them (their results are dropped) and wait
        at most `wait_s` for them to unwind."""
        if self.tasks and grace_s > 0:
            await asyncio.wait(set(self.tasks), timeout=grace_s)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=wait_s)

    async def _run_job(self, job: Job, planned: float) -> None:
        """One cycle of one target: wait for a slot, run the probe behind its breaker, hand the result on."""
        loop = asyncio.get_running_loop()
        try:
            with tracing.span("collector.cycle", target=job.name, kind=job.settings.kind) as cycle:
                async with self.semaphore:
                    off = loop.time() - planned  # early (< 0) by at most half a tick, or late
                    lag = max(0.0, off)
                    self.metrics.start_lag.observe(lag)
                    self._window_lag = max(self._window_lag, lag)
                    if len(self.lags) < LAGS_MAX:
                        self.lags.append(abs(off))
                    started = time.perf_counter()
                    result = await self.probe_job(job)
                    if result is None:  # a subclass decided at the real start not to run (sharding)
                        self.metrics.target_state.remove(job.name, job.settings.kind)  # another replica reports it
                        return
                    series, took = self.series(job), time.perf_counter() - started
                    series.duration.observe(took)
                    series.last_duration.set(took)
                    if cycle.is_recording():
                        tracing.annotate(cycle, lag_s=round(lag, 4), status=result.status)
                    self.record(job, result)
        finally:
            job.running = False

    async def _run_periodic(self, job: Periodic, planned: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            with tracing.span("collector.periodic", name=job.name, owner=job.owner):
                async with self.semaphore:
                    self.metrics.start_lag.observe(max(0.0, loop.time() - planned))  # early: no lag
                    async with asyncio.timeout(job.timeout_s + 1.0):
                        await job.run()
        except TimeoutError:
            log.warning("periodic_overran", name=job.name, timeout_s=job.timeout_s)
        except Exception:  # a bug in periodic work must not stop the collector
            log.exception("periodic_crashed", name=job.name)
        finally:
            job.running = False

    async def probe_job(self, job: Job) -> ProbeResult | None:
        """Run one probe behind its breaker and a hard timeout; never raises (but for cancellation)."""
        before = job.breaker.state
        try:
            return await self._probe_behind_breaker(job)
        finally:
            if job.breaker.state != before:
                self.breakers_changed.set()

    async def _probe_behind_breaker(self, job: Job) -> ProbeResult:
        kind = job.settings.kind
        with tracing.span(f"probe {kind}", target=job.name, kind=kind) as span:
            if not job.breaker.allow():
                result = breaker_result(job)
                tracing.annotate(span, status=result.status, retries=0, breaker=job.breaker.view().state,
                                 skipped=True)
                tracing.fail(span, result.error)
                return result
            if job.breaker.state == "half-opened":  # the trial probe: show it while it runs
                self.breakers_changed.set()
            task = asyncio.current_task()
            assert task is not None
            self._deadlines[task] = asyncio.get_running_loop().time() + job.settings.timeout_s + 1.0
            try:
                result = await job.probe.check()
            except asyncio.CancelledError:
                if task not in self._overran or task.uncancel() > 0:  # not (only) the sweep: shutdown
                    raise
                result = down_result(job, f"timed out after {job.settings.timeout_s:.1f} s (probe overran its "
                                          "timeout)")
            except Exception as exc:  # a probe bug must not stop the collector
                log.exception("probe_crashed", target=job.name, kind=kind)
                result = down_result(job, f"internal error in the {kind} probe: {type(exc).__name__}")
            finally:
                self._deadlines.pop(task, None)
                self._overran.discard(task)
            job.breaker.record(result.status == "down", result.error)
            if job.breaker.is_open:
                result = replace(result, details={**result.details, "breaker": job.breaker.view().state})
            if span.is_recording():
                tracing.annotate(span, status=result.status, retries=max(0, job.probe.last_attempts - 1),
                                 breaker=job.breaker.view().state, latency_ms=result.latency_ms, error=result.error)
                if result.status == "down":
                    tracing.fail(span, result.error)
            return result

    def record(self, job: Job, result: ProbeResult) -> None:
        job.runs += 1
        job.last_run_at = time.monotonic()
        job.last_result = result
        self.probes_done += 1
        self.last_probe_at = time.time()
        kind = job.settings.kind
        series = self.series(job)
        counter = series.probes.get(result.status)
        if counter is None:
            counter = series.probes[result.status] = self.metrics.probes.labels(job.name, kind, result.status)
        counter.inc()
        self.metrics.target_state.set(job.name, kind, result.status, job.settings.interval_s)
        shown = 1 if job.breaker.is_open else 0
        if series.breaker_shown != shown:
            series.breaker_open.set(shown)
            series.breaker_shown = shown
        change = None
        previous = job.previous_status
        if previous != result.status and (previous is not None or result.status != "up"):
            change = StateChange(job.name, kind, previous, result.status, result.error, result.observed_at)
            log.info("state_change", target=job.name, kind=kind, previous=previous, current=result.status,
                     error=result.error)
        job.previous_status = result.status
        self.writer.submit(result, change)

    def series(self, job: Job) -> JobSeries:
        series = job.series
        if series is None or series.metrics is not self.metrics:
            series = job.series = JobSeries(self.metrics, job.name, job.settings.kind)
        return series

    async def _sweep_overruns(self, stop: asyncio.Event) -> None:
        """Cancel the probe runs past their hard deadline (timeout_s + 1 s): check() bounds itself by timeout_s,
        this catches a probe that does not (a plugin's bug, a client call that ignores cancellation once)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await _until(stop, grid_after(loop.time(), SWEEP_S))
            now = loop.time()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._overran:
                    self._overran.add(task)
                    task.cancel()

    async def _lag_ticker(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.ticked_at = time.monotonic()
            await _until(stop, grid_after(loop.time(), 1.0))
            self.ticked_at = time.monotonic()
            self.metrics.cycle_lag.set(self._window_lag)
            self.current_lag = self._window_lag
            self.max_lag = max(self.max_lag, self._window_lag)
            self._window_lag = 0.0


def tick_for(jobs: Sequence[Job | Periodic]) -> float:
    """The grid of a job set: `TICK_S`, or half the shortest interval when that is shorter (a target probed
    every 50 ms must not have two plans on one grid point)."""
    return min([TICK_S, *(job.interval_s / 2 for job in jobs)])


async def _relay(stop: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    wake.set()


async def _until(stop: asyncio.Event, when: float) -> None:
    """Wait until loop time `when` (a timer at exactly that time, shared with what else is due then) or stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(when):
            await stop.wait()


def _fraction(name: str) -> float:
    """A stable number in [0, 1) for a name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") / 2**32


def down_result(job: Job, error: str) -> ProbeResult:
    return ProbeResult(
        target=job.name, kind=job.settings.kind, status="down", latency_ms=None, version=None,
        metrics={}, error=error, observed_at=iso(utcnow()),
    )


def breaker_result(job: Job) -> ProbeResult:
    result = down_result(job, job.breaker.reason())
    return replace(result, details={"breaker": "opened"})
