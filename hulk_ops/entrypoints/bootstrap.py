"""The composition root: turns a validated Config into wired components. No I/O happens here."""

from __future__ import annotations

import os
import socket

from hulk_ops.collectors.backend_export import BackendMetrics, job_samples
from hulk_ops.collectors.breaker import TargetBreaker
from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.collector import Collector
from hulk_ops.collectors.prometheus_pull import build_query_jobs
from hulk_ops.collectors.scheduler import Job, Scheduler
from hulk_ops.collectors.shard_coordinator import ShardCoordinator, ShardedScheduler
from hulk_ops.collectors.store import RedisResultStore, ResultStore, tracked_matcher
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.config import Config, TargetSettings
from hulk_ops.probes import registry
from hulk_ops.probes.base import Probe


def build_probe(config: Config, target: TargetSettings) -> Probe:
    return registry.build_probe(target, rules=config.rule_set(target), retries=config.collector.retries)


def build_store(config: Config) -> RedisResultStore:
    return RedisResultStore(
        config.store.url,
        Keys(config.store.prefix),
        retention_h=config.store.retention_h,
        events_max=config.store.events_max,
        tracked=lambda kind: tracked_matcher(registry.tracked_metrics(kind)),
        sentinel=config.store.sentinel,
        cluster=config.store.cluster,
    )


def replica_id(config: Config) -> str:
    """This collector's id: config, else $HULK_OPS_REPLICA (the pod name on Kubernetes), else host-pid."""
    return config.collector.sharding.replica or os.environ.get("HULK_OPS_REPLICA") or \
        f"{socket.gethostname()}-{os.getpid()}"


def build_coordinator(config: Config, metrics: CollectorMetrics) -> ShardCoordinator:
    from hulk_ops.collectors.membership import RedisMembership

    s = config.collector.sharding
    membership = RedisMembership(s.url or config.store.url, config.store.prefix,
                                 timeout_s=min(1.0, s.sync_every_s * 2),
                                 sentinel=None if s.url else config.store.sentinel,
                                 cluster=False if s.url else config.store.cluster)
    longest = max((t.interval_s for t in config.targets), default=0.0)
    late_s = longest * config.collector.jitter_pct / 100 + 0.25  # jitter + loop lag, drained before stop
    return ShardCoordinator(replica_id(config), s, membership, config.targets, metrics, late_s=late_s)


def build_collector(config: Config, store: ResultStore | None = None,
                    metrics: CollectorMetrics | None = None) -> Collector:
    metrics = metrics or CollectorMetrics()
    store = store if store is not None else build_store(config)
    c = config.collector
    writer = BufferedWriter(store, metrics, batch_max=c.batch_max, flush_interval_s=c.flush_interval_s,
                            buffer_max=c.buffer_max)
    jobs = [
        Job(settings=t, probe=build_probe(config, t),
            breaker=TargetBreaker(t.name, c.breaker.failures, c.breaker.reset_s))
        for t in config.targets
    ]
    periodic = build_query_jobs(config.targets, store, metrics)
    if not c.sharding.enabled:
        scheduler = Scheduler(jobs, writer, metrics, concurrency=c.concurrency, jitter_pct=c.jitter_pct,
                              periodic=periodic)
        collector = Collector(config, store, writer, scheduler, metrics)
    else:
        coordinator = build_coordinator(config, metrics)
        scheduler = ShardedScheduler(jobs, writer, metrics, concurrency=c.concurrency, jitter_pct=c.jitter_pct,
                                     periodic=periodic, coordinator=coordinator)
        collector = Collector(config, store, writer, scheduler, metrics, sharding=coordinator)
    if config.export.enabled:
        metrics.registry.register(build_backend_export(collector, config.export.max_series))
    return collector


def build_backend_export(collector: Collector, max_series: int) -> BackendMetrics:
    """Every tracked metric of every target on /metrics, read from the collector's current jobs at each scrape."""
    return BackendMetrics(job_samples(lambda: collector.scheduler.jobs), registry.catalog,
                          lambda kind: tracked_matcher(registry.tracked_metrics(kind)), max_series=max_series)
