"""Live config reload for `hulk-ops collect`: SIGHUP (or a change of the file, with --watch-config) re-reads the
config and swaps the target set in place.

Targets are matched by name. One whose settings (and the rules and retries that shape its probe) are unchanged
keeps its Job: breaker, previous status (so no spurious state change), phase, metric children. An added target is
planned from now (its first run within one interval); a removed one is retired (its history stays in the store,
a run under way finishes); a changed one gets a new probe and breaker but keeps its previous status, so its open
incident carries on rather than being reopened. With sharding the coordinator gets the new target set first, so
every replica assigns the same names by the same hash.

A config that does not load or validate is refused: the running one stays in force, the error is logged,
`hulk_ops_config_reload_success` is 0. Settings outside `targets`/`rules` (store, collector, sharding, telemetry)
need a restart; a reload that changes them says so in its log line and applies the targets anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from hulk_ops.collectors.breaker import TargetBreaker
from hulk_ops.collectors.prometheus_pull import build_query_jobs
from hulk_ops.collectors.scheduler import Job, Periodic
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.config import Config, ConfigError, TargetSettings, load_config
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.observe import logs

if TYPE_CHECKING:
    from hulk_ops.collectors.collector import Collector

log = structlog.get_logger("hulk_ops.reload")
RESTART_SECTIONS = ("store", "collector", "telemetry", "notify", "audit", "discovery", "export")


def _probe_shape(config: Config, target: TargetSettings) -> tuple[TargetSettings, list[str], int]:
    return (target, config.rules.get(target.kind, []), config.collector.retries)


def apply_config(collector: Collector, new: Config) -> dict[str, list[str]]:
    """Swap the collector's targets for the new config's (no I/O but closing retired probes later)."""
    old = collector.config
    old_jobs = {j.name: j for j in collector.scheduler.jobs}
    c = old.collector
    jobs: list[Job] = []
    added, changed, kept = [], [], []
    for target in new.targets:
        job = old_jobs.get(target.name)
        if job is not None and _probe_shape(old, job.settings) == _probe_shape(new, target):
            jobs.append(job)
            kept.append(target.name)
            continue
        fresh = Job(settings=target, probe=build_probe(new, target),
                    breaker=TargetBreaker(target.name, c.breaker.failures, c.breaker.reset_s))
        if job is not None:
            fresh.previous_status = job.previous_status
            changed.append(target.name)
        else:
            added.append(target.name)
        jobs.append(fresh)
    names = {t.name for t in new.targets}
    removed = [name for name in old_jobs if name not in names]
    periodic_old = {p.name: p for p in collector.scheduler.periodic}
    rebuilt = {*added, *changed}
    periodic = [p for p in collector.scheduler.periodic if p.owner in names and p.owner not in rebuilt]
    periodic += build_query_jobs([t for t in new.targets if t.name in rebuilt], collector.store, collector.metrics)
    if collector.sharding is not None:  # before the scheduler plans new jobs on the coordinator's slots
        collector.sharding.set_targets(new.targets)
    collector.scheduler.replace_jobs(jobs, periodic)
    keep = {id(j) for j in jobs} | {id(p) for p in periodic}
    retired = [j for j in old_jobs.values() if id(j) not in keep] + \
              [p for p in periodic_old.values() if id(p) not in keep]
    for old_job in retired:
        _close_later(old_job)
    metrics = collector.metrics
    for name in removed:
        _forget_series(metrics, old_jobs[name])
    for job in jobs:
        metrics.probe_interval.labels(job.name, job.settings.kind).set(job.interval_s)
        metrics.slo_objective.labels(job.name, job.settings.kind).set(new.slo_for(job.settings).availability / 100)
    if collector.sharding is None:  # with sharding the coordinator counts what it owns
        metrics.targets_owned.labels(_replica(collector)).set(len(jobs))
    collector.config = new
    logs.configure_secrets(new.secrets())
    return {"added": added, "removed": removed, "changed": changed, "kept": kept}


def apply_merged(collector: Collector) -> dict[str, list[str]]:
    """Apply the static config plus the discovered targets (hulk_ops/collectors/discovery.py)."""
    from hulk_ops.core import discovered

    static = collector.static_config or collector.config
    merged, clashes, problems = discovered.merge(static, collector.discovered)
    for name in set(clashes) - collector.clashes_logged:
        log.warning("discovery_name_clash", target=name, kept="static",
                    hidden=next((t.origin for t in collector.discovered if t.name == name), None))
    collector.clashes_logged = set(clashes)
    for problem in problems:
        log.warning("discovery_skipped", problem=problem)
    return apply_config(collector, merged)


def reload(collector: Collector, path: str | None = None, why: str = "SIGHUP") -> bool:
    """Re-read the config file and apply it; False (old config kept, gauge 0) when it is invalid."""
    source = path or collector.config.source
    metrics = collector.metrics
    try:
        new = load_config(source)
        _check_kinds(new)
    except ConfigError as exc:
        metrics.config_reload_success.set(0)
        log.error("config_reload_refused", source=source, trigger=why, error=str(exc))
        return False
    restart = [s for s in RESTART_SECTIONS if getattr(new, s, None) != getattr(collector.config, s, None)]
    collector.static_config = new
    outcome = apply_merged(collector)
    metrics.config_reload_success.set(1)
    metrics.config_last_reload.set(time.time())
    log.info("config_reloaded", source=source, trigger=why, targets=len(new.targets),
             added=outcome["added"], removed=outcome["removed"], changed=outcome["changed"],
             **({"needs_restart": restart} if restart else {}))
    return True


async def watch_file(collector: Collector, stop: asyncio.Event) -> None:
    """Reload whenever the config file changes (watchfiles: inotify, debounced)."""
    import os.path

    import watchfiles

    path, folder, name = _where(collector.config.source)
    # the directory is watched: editors and ConfigMap updates (a `..data` symlink swap) replace the file
    async for changes in watchfiles.awatch(folder, stop_event=stop, debounce=300, recursive=False):
        if any(os.path.basename(p) in (name, "..data") for _c, p in changes):
            reload(collector, path, why="file change")


def _where(source: str) -> tuple[str, str, str]:
    import os.path

    path = os.path.abspath(source)
    return (path, *os.path.split(path))


def _check_kinds(config: Config) -> None:
    """Probe modules for new kinds must import (the CLI preloads those of the first config)."""
    from hulk_ops.probes import registry

    try:
        registry.preload({t.kind for t in config.targets})
    except ImportError as exc:
        raise ConfigError(f"{config.source}: cannot load a probe: {exc}") from None


def _forget_series(metrics: CollectorMetrics, job: Job) -> None:
    """A removed target's labelled children leave /metrics (its history stays in the store)."""
    kind = job.settings.kind
    metrics.target_state.remove(job.name, kind)
    for gauge, labels in ((metrics.last_duration, (job.name, kind)), (metrics.probe_interval, (job.name, kind)),
                          (metrics.slo_objective, (job.name, kind)),
                          (metrics.breaker_open, (job.name,))):
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)


def _replica(collector: Collector) -> str:
    from hulk_ops.entrypoints.bootstrap import replica_id

    return replica_id(collector.config)


def _close_later(job: Job | Periodic) -> None:
    """Close a retired job's client once a run under way is over (bounded: a close never blocks a reload)."""
    async def close() -> None:
        for _ in range(100):
            if not job.running:
                break
            await asyncio.sleep(0.1)
        closer = job.probe if isinstance(job, Job) else job
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closer.close(), 5.0)

    with contextlib.suppress(RuntimeError):  # no running loop (a unit test applying a config synchronously)
        task = asyncio.get_running_loop().create_task(close())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()
