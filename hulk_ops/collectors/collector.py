"""The running parts of one collector process, as the composition root (entrypoints/bootstrap.py) built them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hulk_ops.collectors.scheduler import Scheduler
from hulk_ops.collectors.shard_coordinator import ShardCoordinator
from hulk_ops.collectors.store import ResultStore
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.config import Config, TargetSettings

if TYPE_CHECKING:  # built only when configured, by the modules that use them
    from hulk_ops.collectors.notify.service import Notifier
    from hulk_ops.collectors.rollup_job import RollupJob


@dataclass
class Collector:
    config: Config
    store: ResultStore
    writer: BufferedWriter
    scheduler: Scheduler
    metrics: CollectorMetrics
    notifier: Notifier | None = None  # when webhooks are configured (built by the service)
    sharding: ShardCoordinator | None = None
    breakers_written: dict[str, tuple[str, int]] = field(default_factory=dict)  # what the heartbeat last wrote
    heartbeats: int = 0
    gc_full_ms: float | None = None  # duration of the latest periodic full GC (hulk_ops/entrypoints/service.py)
    static_config: Config | None = None  # the file's config; `config` adds the discovered targets to it
    discovered: list[TargetSettings] = field(default_factory=list)  # from hulk_ops/collectors/discovery.py
    rollups: RollupJob | None = None  # the long-range tier's writer, when it is on
    clashes_logged: set[str] = field(default_factory=set)  # discovered names a static target hides (logged once)

