"""`hulk-ops collect`: runs the scheduler until SIGTERM/SIGINT, serving its own /metrics; SIGHUP (and, with
`watch_config`, a change of the file) reloads the config (`hulk_ops/entrypoints/reload.py`).

Shutdown is bounded (< 2 s from SIGTERM to exit): stop planning runs, cancel in-flight probes, let the
store write under way finish and flush the buffered results, write a last heartbeat, close the clients
(`_shutdown`, each step within what is left of `SHUTDOWN_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import structlog

from hulk_ops.core.config import Config
from hulk_ops.core.model import JSON
from hulk_ops.entrypoints.bootstrap import Collector, build_collector, replica_id
from hulk_ops.observe import tracing

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from hulk_ops.collectors.rollup_job import RollupJob
    from hulk_ops.collectors.scheduler import Job

log = structlog.get_logger("hulk_ops.collector")
HEARTBEAT_S = 5.0
GC_THRESHOLDS = (10_000, 10, 10)
GC_FULL_EVERY_S = 60.0  # a full collection of what is not frozen (see _manage_gc)
BREAKERS_FULL_EVERY = 60  # heartbeats (5 min)
SHUTDOWN_S = 1.5  # the steps after the scheduler stopped; the process exits within 2 s of SIGTERM
SIGNALLED_AT: float | None = None  # monotonic time of the first SIGTERM/SIGINT



async def run_collector(config: Config, metrics_port: int | None = 9464, metrics_host: str = "127.0.0.1",
                        stop: asyncio.Event | None = None, collector: Collector | None = None,
                        watch_config: bool = False) -> Collector:
    global SIGNALLED_AT
    SIGNALLED_AT = None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _on_signal, stop, sig)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    collector = collector or build_collector(config)
    from hulk_ops.entrypoints import reload

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
        loop.add_signal_handler(signal.SIGHUP, reload.reload, collector)
    collector.metrics.config_last_reload.set(time.time())
    tracing.configure(config.telemetry, config.secrets(), component="collector")
    sharding = collector.sharding
    replica = sharding.replica if sharding else replica_id(config)
    if collector.notifier is None and config.notify.webhooks:
        from hulk_ops.collectors.notify.service import Notifier

        collector.notifier = Notifier(config, collector.metrics, replica)
    server = None
    if metrics_port is not None:
        from hulk_ops.collectors import metrics_server

        server, _thread = metrics_server.serve(collector.metrics.registry, metrics_host, metrics_port,
                                               lambda: collector.scheduler.ticked_at)
    collector.metrics.targets_owned.labels(replica).set(0 if sharding else len(collector.scheduler.jobs))
    for job in collector.scheduler.jobs:
        collector.metrics.probe_interval.labels(job.name, job.settings.kind).set(job.interval_s)
        collector.metrics.slo_objective.labels(job.name, job.settings.kind).set(
            config.slo_for(job.settings).availability / 100)
    scheduler_stop, drain = stop, None
    try:
        previous = await asyncio.wait_for(collector.store.previous_statuses(), timeout=2.0)
    except Exception as exc:  # the store may be down at start: we buffer and carry on
        log.warning("store_unreachable_at_start", error=str(exc))
        previous = {}
    for job in collector.scheduler.jobs:
        job.previous_status = previous.get(job.name)
    from hulk_ops.probes import registry

    for problem in registry.problems():
        log.warning("kind_plugin_problem", problem=problem)
    log.info("collector_started", replica=replica, targets=len(collector.scheduler.jobs),
             metrics_port=metrics_port, store=config.store.prefix)
    collector.writer.start()
    heartbeat = asyncio.create_task(_heartbeat(collector, replica, stop))
    breakers = asyncio.create_task(_publish_breakers(collector, stop))
    thresholds = gc.get_threshold()
    # young collections every 10,000 allocations (not 700): a probe's objects are gone by then, so far fewer
    # survive into the older generations, whose collections are the long pauses (measured: bench/collector.py)
    gc.set_threshold(*GC_THRESHOLDS)
    freezer = asyncio.create_task(_manage_gc(collector, stop))
    notifier = asyncio.create_task(collector.notifier.run(stop)) if collector.notifier else None
    watcher = asyncio.create_task(reload.watch_file(collector, stop)) if watch_config else None
    if collector.static_config is None:
        collector.static_config = config
    rollup_task = None
    rollup_job = rollup_job_of(collector, config)
    if rollup_job is not None:
        rollup_task = asyncio.create_task(rollup_job.run(stop))
    finder = None
    if config.discovery.kubernetes is not None:
        from hulk_ops.collectors import discovery
        from hulk_ops.entrypoints.reload import apply_merged

        finder = asyncio.create_task(discovery.run(collector, stop, apply_merged))
    try:
        if sharding:  # join just before the first run; on stop, hand our targets over, then stop the scheduler
            await asyncio.to_thread(sharding.start)
            scheduler_stop = asyncio.Event()
            drain = asyncio.create_task(sharding.drain(stop, scheduler_stop))
        await collector.scheduler.run(scheduler_stop)
    finally:
        stop.set()
        scheduler_stop.set()
        breakers.cancel()
        freezer.cancel()
        for side in (watcher, finder, rollup_task):
            if side is not None:
                side.cancel()
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        await _shutdown(collector, replica, server, heartbeat, drain, notifier)
    return collector


async def _freeze_after_first_cycle(collector: Collector, stop: asyncio.Event) -> None:
    """Once every target has run (clients connected), move what exists to the GC's permanent generation.

    With 10,000 targets the collector holds millions of long-lived objects (clients, connections, metric
    children); a full collection walking them all took ~1 s here and stalled every probe start behind it.
    Frozen objects are never walked again; the garbage collector keeps working on everything newer.
    """
    sched = collector.scheduler
    longest = max((j.interval_s for j in sched.jobs), default=0.0)
    deadline = time.monotonic() + 2 * longest + 5
    while sched.probes_done < len(sched.jobs) and time.monotonic() < deadline:
        try:
            async with asyncio.timeout(0.5):
                await stop.wait()
            return
        except TimeoutError:
            pass
    gc.freeze()  # no gc.collect() first: that would be the very pause this avoids (cyclic garbage of the
    # start-up frozen with the rest is a one-time, bounded cost)
    log.info("gc_frozen", objects=gc.get_freeze_count())


async def _manage_gc(collector: Collector, stop: asyncio.Event) -> None:
    """Freeze after the first cycle, then collect everything not frozen every GC_FULL_EVERY_S.

    With young collections every 10,000 allocations the interpreter's own full collections nearly never
    run: one waits for 10 x 10 young ones *and* for the objects promoted since the last full collection
    to reach a quarter of the long-lived ones counted then (gc.freeze() does not lower that count).
    Cyclic garbage that had lived long enough to reach the oldest generation (an HTTP client discarded
    after a failure with its connection pool, an exception's traceback holding frames) then stayed:
    a flapping target grew the heap steadily (issue 7's soak: +2.2 MB in 27 min, tests/integration/
    test_heap_flapping.py). Frozen objects are not walked, so this full collection only visits what
    was built since the first cycle: milliseconds, measured and logged (``gc_full``, debug).
    """
    await _freeze_after_first_cycle(collector, stop)
    while not stop.is_set():
        try:
            async with asyncio.timeout(GC_FULL_EVERY_S):
                await stop.wait()
            return
        except TimeoutError:
            pass
        started = time.perf_counter()
        freed = gc.collect()
        collector.gc_full_ms = round((time.perf_counter() - started) * 1000, 2)
        log.debug("gc_full", freed=freed, took_ms=collector.gc_full_ms)


def rollup_job_of(collector: Collector, config: Config) -> RollupJob | None:
    """The collector's long-range tier writer (None when off, or when the store is not Redis)."""
    from hulk_ops.collectors.store import RedisResultStore

    store = collector.store
    if not config.store.rollups.enabled or not isinstance(store, RedisResultStore):
        return None
    from hulk_ops.collectors.rollup_job import RollupJob

    def targets() -> list[str]:
        sharding = collector.sharding
        return [j.name for j in collector.scheduler.jobs if sharding is None or sharding.owns(j.name)]

    collector.rollups = RollupJob(store.redis, store.keys, config.store.rollups, config.store.retention_h,
                                  targets)
    return collector.rollups


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    global SIGNALLED_AT
    if SIGNALLED_AT is None:
        SIGNALLED_AT = time.monotonic()
        log.info("collector_stopping", signal=sig.name)
    stop.set()


async def _shutdown(collector: Collector, replica: str, server: WSGIServer | None, heartbeat: asyncio.Task[None],
                    drain: asyncio.Task[None] | None, notifier: asyncio.Task[None] | None) -> None:
    """Everything after the scheduler stopped, within SHUTDOWN_S: each step gets at most what is left of it.

    Order: stop the side tasks, cancel in-flight probes (their results are dropped: nothing half-measured
    is written), flush the writer (the write under way finishes; a store that does not answer is given up
    on, its results logged as unflushed), the final heartbeat, then close clients, /metrics and tracing
    side by side."""
    started = time.monotonic()
    end = started + SHUTDOWN_S
    phases: dict[str, float] = {}

    def left(cap: float) -> float:
        return max(0.05, min(cap, end - time.monotonic()))

    def mark(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = round(now - since, 3)
        return now

    t = started
    heartbeat.cancel()
    if drain is not None:
        drain.cancel()
    if collector.sharding:
        await asyncio.to_thread(collector.sharding.stop)
    if notifier is not None and collector.notifier is not None:  # the task runs the collector's notifier
        notifier.cancel()
        await asyncio.wait({notifier}, timeout=left(0.3))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(collector.notifier.close(), left(0.3))
    t = mark("side_tasks", t)
    await collector.scheduler.cancel_running(wait_s=left(0.3))
    t = mark("probes", t)
    await collector.writer.stop(deadline_s=left(0.8))
    t = mark("flush", t)
    if collector.writer.store_ok:  # a store that just failed the flush would only eat the budget
        await _write_heartbeat(collector, replica, stopped=True, timeout_s=left(0.3))
    t = mark("heartbeat", t)
    closing = [asyncio.wait_for(j.probe.close(), left(0.3)) for j in collector.scheduler.jobs]
    closing += [asyncio.wait_for(p.close(), left(0.3)) for p in collector.scheduler.periodic]
    if hasattr(collector.store, "close"):
        closing.append(asyncio.wait_for(collector.store.close(), left(0.3)))
    if server is not None:  # shutdown() waits for the serving thread's poll (up to 0.5 s): side by side
        closing.append(asyncio.to_thread(_stop_http, server))
    closing.append(asyncio.to_thread(tracing.shutdown, left(0.3)))
    await asyncio.gather(*closing, return_exceptions=True)
    mark("close", t)
    now = time.monotonic()
    log.info("collector_stopped", shutdown_s=round(now - started, 3), unflushed=len(collector.writer.buffer),
             since_signal_s=round(now - SIGNALLED_AT, 3) if SIGNALLED_AT is not None else None, phases=phases)


def _stop_http(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()


async def _heartbeat(collector: Collector, replica: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await _write_heartbeat(collector, replica)
        collector.scheduler.heartbeat_mark = (time.monotonic(), collector.scheduler.probes_done)
        try:
            async with asyncio.timeout(HEARTBEAT_S):
                await stop.wait()
        except TimeoutError:
            pass


async def _write_heartbeat(collector: Collector, replica: str, stopped: bool = False,
                           timeout_s: float = 1.0) -> None:
    sched, writer = collector.scheduler, collector.writer
    info: dict[str, JSON] = {
        "replica": replica,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": sched.started_at,
        "heartbeat_at": time.time(),
        "last_probe_at": sched.last_probe_at,
        "targets": len(sched.jobs),
        "probes_done": sched.probes_done,
        "max_lag_s": round(sched.max_lag, 4),
        "store_ok": writer.store_ok,
        "buffered": len(writer.buffer),
        "oldest_buffered_at": writer.oldest_buffered_at(),
        "dropped": writer.dropped,
        "stopped": stopped,
        **health(collector),
    }
    if collector.sharding:
        info["shard"] = collector.sharding.info()
    # only the breakers that changed since the last write (all of them every BREAKERS_FULL_EVERY heartbeats):
    # rewriting 10,000 unchanged ones every 5 s stalled the loop for every probe due meanwhile
    written = collector.breakers_written
    if collector.heartbeats % BREAKERS_FULL_EVERY == 0:
        written.clear()
    collector.heartbeats += 1
    now = time.monotonic()  # only the targets this replica probes (sharding: not the owner's)
    changed = [j for j in sched.jobs if _probes_now(j, now) and written.get(j.name) != j.breaker.signature()]
    breakers = {j.name: j.breaker.view().to_dict() for j in changed}
    try:
        async with asyncio.timeout(timeout_s):
            await collector.store.write_heartbeat(replica, info)
            await collector.store.write_breakers(breakers)
            written.update((j.name, j.breaker.signature()) for j in changed)
    except Exception as exc:  # the writer already reports store outages
        log.debug("heartbeat_failed", error=str(exc))


def breaker_states(collector: Collector) -> dict[str, dict[str, JSON]]:
    """The breakers of the targets this replica probes now (ran within two intervals and a heartbeat).

    With sharding every replica has a breaker for every target; one that does not probe a target
    keeps it closed, and writing that would overwrite the owner's open breaker.
    """
    now = time.monotonic()
    return {j.name: j.breaker.view().to_dict() for j in collector.scheduler.jobs if _probes_now(j, now)}


def _probes_now(job: Job, now: float) -> bool:
    return job.last_run_at is not None and now - job.last_run_at <= 2 * job.interval_s + HEARTBEAT_S


async def _publish_breakers(collector: Collector, stop: asyncio.Event) -> None:
    """Write the breakers as soon as one changes state (the heartbeat rewrites them every HEARTBEAT_S too)."""
    changed = collector.scheduler.breakers_changed
    while not stop.is_set():
        await changed.wait()
        changed.clear()
        try:
            async with asyncio.timeout(1.0):
                await collector.store.write_breakers(breaker_states(collector))
        except Exception as exc:  # the writer already reports store outages; the heartbeat retries
            log.debug("breakers_write_failed", error=str(exc))


def health(collector: Collector) -> dict[str, Any]:
    """What the health page shows beyond the counters: rates and latencies since the last heartbeat."""
    sched, writer = collector.scheduler, collector.writer
    mark_at, mark_done = sched.heartbeat_mark
    elapsed = time.monotonic() - mark_at
    writes = sorted(writer.write_times)
    lags, sched.lags = sorted(sched.lags), []
    out: dict[str, Any] = {
        "probes_per_s": round((sched.probes_done - mark_done) / elapsed, 3) if elapsed > 0.5 else None,
        # start lag (actual start - planned start) of the probes since the previous heartbeat
        "start_lag_n": len(lags),
        "start_lag_ms_p50": round(lags[len(lags) // 2] * 1000, 2) if lags else None,
        "start_lag_ms_p99": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000, 2) if lags else None,
        "start_lag_ms_max": round(lags[-1] * 1000, 2) if lags else None,
        "cycle_lag_s": round(sched.current_lag, 4),
        "store_write_ms_p50": round(writes[len(writes) // 2] * 1000, 3) if writes else None,
        "store_write_ms_max": round(writes[-1] * 1000, 3) if writes else None,
        "store_error": writer.last_error if not writer.store_ok else None,
        "breakers_open": sum(1 for j in sched.jobs if j.breaker.is_open),
        "gc_full_ms": collector.gc_full_ms,
    }
    if collector.notifier is not None:
        out.update(collector.notifier.heartbeat())
    return out
