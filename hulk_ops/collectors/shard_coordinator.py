"""Sharded collectors at run time: the membership thread, the scheduler's `owns` hook, the drain.

`ShardCoordinator` keeps this replica's lease and a local view of the members. A thread (not the
event loop, so a busy loop cannot let the lease lapse) renews and reads the membership every
`sync_s`. The scheduler asks `owns(name)` when a run is due; the answer is HRW over the members
that count at the run's slot (`hulk_ops/collectors/sharding.py`), refused when the view is too old to be
sure (no joiner or leaver can have been missed) or our own lease may have lapsed. On SIGTERM
`drain()` announces the leave and keeps probing until the handover time, so no slot is lost.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter, Gauge

from hulk_ops.collectors import sharding
from hulk_ops.collectors.membership import MemberRecord, Membership, MembershipError
from hulk_ops.collectors.scheduler import Job, Periodic, Scheduler
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.config import ShardingSettings, TargetSettings
from hulk_ops.core.model import ProbeResult

log = structlog.get_logger("hulk_ops.sharding")
EARLY_S = 0.05  # a run popped this much before its slot (timer and clock reading error) still belongs to it
AFTER_START_S = 0.005
# No run starts in the last GUARD_S of a slot (only a run stalled for most of an interval would), so
# a probe's stored time (0.1 s resolution) always tells its slot (hulk_ops/collectors/shard_audit.py).
GUARD_S = 0.2


@dataclass(frozen=True, slots=True)
class TargetSlot:
    hash: int
    interval_s: float
    offset: float


@dataclass(frozen=True, slots=True)
class View:
    members: tuple[sharding.Incarnation, ...] = ()
    server_time: float = -math.inf  # server time of the newest successful snapshot
    lease_until: float = -math.inf  # monotonic: our lease is certainly alive before this
    engine_error: str | None = None  # set while the engine cannot be reached


class ShardCoordinator:
    def __init__(self, replica: str, settings: ShardingSettings, membership: Membership,
                 targets: list[TargetSettings], metrics: CollectorMetrics, late_s: float = 0.2,
                 wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self.replica = replica
        self.settings = settings
        self.membership = membership
        self.late_s = late_s  # how late a run may start after its slot (jitter + loop lag): drained before stop
        self.wall, self.mono = wall, mono
        self.set_targets(targets)
        self.view = View()
        self.token = ""
        self.leaving_at: float | None = None
        self.owned = 0
        self._balanced_for: tuple[str, ...] | None = None
        self._warned_at = -math.inf
        self.last_slot: dict[str, int] = {}
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._metrics = metrics
        r = metrics.registry
        self.members_gauge = Gauge("hulk_ops_shard_members", "Collector replicas counting now in this view",
                                   registry=r)
        self.view_age = Gauge("hulk_ops_shard_view_age_seconds", "Age of the newest membership snapshot",
                              registry=r)
        self.uncoordinated = Counter("hulk_ops_shard_uncoordinated_slots",
                                     "Due runs not made because the membership view was too old or the lease lapsed",
                                     registry=r)
        self.late_dropped = Counter("hulk_ops_shard_late_results_dropped",
                                    "Results dropped because the probe started outside the slot it claimed",
                                    registry=r)
        self.fail_open_runs = Counter("hulk_ops_shard_fail_open_slots",
                                      "Runs made on the last known view while the engine was unreachable", registry=r)
        self.view_age.set_function(lambda: max(0.0, self.wall() - self.view.server_time)
                                   if self.view.server_time > 0 else -1)

    def set_targets(self, targets: list[TargetSettings]) -> None:
        """The target set (at start and on a config reload): every replica hashes the same names the same way,
        so each target still has exactly one owner. Attributes are rebound whole (the sync thread reads them)."""
        self.targets = {t.name: TargetSlot(sharding.target_hash(t.name), t.interval_s,
                                           sharding.slot_offset(t.name, t.interval_s)) for t in targets}
        self._hashes = np.array([s.hash for s in self.targets.values()], dtype=np.uint64)
        self.retain_s = 2 * max((t.interval_s for t in targets), default=1.0) + self.settings.handover_s
        self._balanced_for = None  # recount what this replica owns at the next sync

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Join and take a first snapshot (blocking; call through asyncio.to_thread), then keep syncing."""
        self.sync_once()
        self._thread = threading.Thread(target=self._loop, name="shard-membership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.membership.close()

    async def drain(self, stop: asyncio.Event, scheduler_stop: asyncio.Event) -> None:
        """On stop: announce the leave, keep probing our slots until `leaving_at`, then stop the scheduler."""
        await stop.wait()
        try:
            self.leaving_at = await asyncio.to_thread(self._leave)
            if self.leaving_at is not None:
                wait = min(self.leaving_at - self.wall(), self.settings.handover_s) + self.late_s
                if wait > 0:
                    await asyncio.sleep(wait)
        finally:  # whatever happens above, the collector stops
            scheduler_stop.set()

    def _loop(self) -> None:
        while not self._halt.wait(self.settings.sync_every_s):
            self.sync_once()

    # -- membership -------------------------------------------------------------------------------
    def _join(self) -> None:
        self.token = uuid.uuid4().hex[:16]
        record: MemberRecord = {"id": self.replica, "token": self.token, "host": socket.gethostname(),
                                "pid": os.getpid()}
        _now, activate_at = self.membership.join(record, self.settings.membership_ttl_s, self.settings.handover_s)
        log.info("shard_joined", replica=self.replica, activate_in_s=round(activate_at - _now, 3))

    def _leave(self) -> float | None:
        try:
            leaving_at = self.membership.leave(self.replica, self.token, self.settings.handover_s)
        except MembershipError as exc:
            log.warning("shard_leave_failed", error=str(exc))
            return None
        if leaving_at is not None:
            log.info("shard_leaving", replica=self.replica, in_s=round(leaving_at - self.wall(), 3))
            members = tuple(replace(m, leaving_at=leaving_at, end=min(m.end, leaving_at))
                            if (m.id, m.token) == (self.replica, self.token) else m for m in self.view.members)
            self.view = replace(self.view, members=members)
        return leaving_at

    def sync_once(self) -> None:
        """Renew our lease and read the members (one round trip); rejoin if the lease was lost."""
        s = self.settings
        for _attempt in range(2):
            sent = self.mono()
            renew = self.leaving_at is None or self.wall() < self.leaving_at
            try:
                if not self.token:
                    self._join()
                snap = self.membership.sync(self.replica, self.token, s.membership_ttl_s, renew=renew)
            except MembershipError as exc:
                if not exc.down:  # a slow answer: the view just ages, and the lease fence applies
                    log.warning("shard_sync_slow", error=str(exc))
                    return
                if self.view.engine_error is None:
                    log.warning("shard_engine_unreachable", error=str(exc), fail_open=s.fail_open)
                self.view = replace(self.view, engine_error=str(exc))
                return
            lease_until = sent + s.membership_ttl_s if snap.renewed == 1 else self.view.lease_until
            members = sharding.merge_members(self.view.members, snap.records, snap.server_time,
                                             s.max_clock_skew_s, self.retain_s)
            if self.view.engine_error is not None:
                log.info("shard_engine_back")
            self.view = View(members, snap.server_time, lease_until if renew else self.view.lease_until)
            if snap.renewed == 1 or not renew or self.leaving_at is not None:
                break
            log.warning("shard_lease_lost", replica=self.replica,
                        reason="id taken by another process" if snap.renewed == -1 else "lease expired")
            self.token = ""  # join again: a new incarnation, active after the handover delay
        self._refresh_balance()

    def _refresh_balance(self) -> None:
        now = self.wall()
        counting = tuple(sorted({m.id for m in self.view.members if m.counts_at(now)}))
        if counting == self._balanced_for:
            return
        self._balanced_for = counting
        counts = sharding.balance(self._hashes, self.view.members, now)
        self.owned = counts.get(self.replica, 0)
        self._metrics.targets_owned.labels(self.replica).set(self.owned)
        self.members_gauge.set(len(counts))

    # -- the scheduler's hook ---------------------------------------------------------------------
    def owns(self, name: str) -> bool:
        """The scheduler's hook when a run is due: do we own the current slot of this target?

        Other periodic work tied to a target (query pulls) asks this too and runs on the owner.
        """
        return self._owned_slot(name) is not None

    def claim(self, name: str) -> int | None:
        """At a probe's real start (after any queueing): own the slot, not yet probed? Then take it.

        A run that slipped into the next slot (a stalled loop) counts for the slot it starts in,
        which is the one its result is stored under, so a slot never gets two results. Returns
        the slot index taken, or None.
        """
        k = self._owned_slot(name)
        if k is None or self.last_slot.get(name) == k or not self.starts_in(name, k, self.wall()):
            return None
        self.last_slot[name] = k
        return k

    def starts_in(self, name: str, k: int, ts: float) -> bool:
        """Does a probe starting at ts clearly belong to slot k? Not in its last GUARD_S: a probe that
        late (a starved process) could be stored under the next slot (0.1 s resolution)."""
        target = self.targets[name]
        next_start = sharding.slot_start(k + 1, target.offset, target.interval_s)
        early = min(EARLY_S, target.interval_s / 10)
        return sharding.slot_index(ts + early, target.offset, target.interval_s) == k and \
            ts <= next_start - min(GUARD_S, target.interval_s / 5)

    def _owned_slot(self, name: str) -> int | None:
        target = self.targets.get(name)
        if target is None:
            return None
        # a run may start a hair before its slot (timer resolution): it belongs to that slot
        early = min(EARLY_S, target.interval_s / 10)
        k = sharding.slot_index(self.wall() + early, target.offset, target.interval_s)
        t = sharding.slot_start(k, target.offset, target.interval_s)
        if not self._coordinated(t) or sharding.owner(target.hash, self.view.members, t) != self.replica:
            return None
        return k

    def _coordinated(self, t: float) -> bool:
        view = self.view
        if view.server_time >= t - self.settings.handover_s and self.mono() < view.lease_until:
            return True
        if self.settings.fail_open and view.engine_error is not None:
            if not any(m.id == self.replica for m in view.members):  # never reached the engine: alone
                self.view = replace(view, members=(sharding.Incarnation(
                    self.replica, "local", sharding.member_hash(self.replica), -math.inf),))
            self.fail_open_runs.inc()
            return True
        self.uncoordinated.inc()
        now = self.mono()
        if now - self._warned_at > 5.0:
            self._warned_at = now
            log.warning("shard_slot_refused", reason="lease may have lapsed" if now >= view.lease_until
                        else "membership view too old", view_age_s=round(self.wall() - view.server_time, 3),
                        slot_age_s=round(self.wall() - t, 3))
        return False

    def info(self) -> dict[str, Any]:
        """What the heartbeat carries (the dashboard shows the balance from it)."""
        now = self.wall()
        return {
            "owned": self.owned,
            "members": sorted({m.id for m in self.view.members if m.counts_at(now)}),
            "view_age_s": round(now - self.view.server_time, 3) if self.view.server_time > 0 else None,
            "engine_error": self.view.engine_error,
            "leaving_at": self.leaving_at,
        }


class ShardedScheduler(Scheduler):
    """The scheduler on wall-clock slots, asking the coordinator; results say which replica probed."""

    def __init__(self, jobs: list[Job], *args: Any, coordinator: ShardCoordinator, **kwargs: Any) -> None:
        kwargs["owns"] = coordinator.owns
        super().__init__(jobs, *args, **kwargs)
        self.coordinator = coordinator
        self._clock_pair: tuple[float, float] | None = None

    def first_due(self, job: Job | Periodic, now: float) -> float:
        if not isinstance(job, Job):  # periodic work (query pulls) runs on its own clock, owned by its target
            return super().first_due(job, now)
        if self._clock_pair is None or self._clock_pair[0] != now:
            self._clock_pair = (now, self.coordinator.wall())  # one wall reading per `now`, or runs drift early
        wall = self._clock_pair[1]
        target = self.coordinator.targets[job.name]
        # a hair after the slot's start, so no run (and no observed_at) falls in the slot before
        return now + (sharding.next_slot_start(wall, target.offset, target.interval_s) - wall) + AFTER_START_S

    def steady_base(self, job: Job | Periodic, now: float, first: float) -> float:
        if not isinstance(job, Job):
            return super().steady_base(job, now, first)
        return first  # the first run is already on the target's slot

    async def probe_job(self, job: Job) -> ProbeResult | None:
        slot = self.coordinator.claim(job.name)
        if slot is None:
            return None
        result = await super().probe_job(job)
        if result is None:
            return None
        if not self.coordinator.starts_in(job.name, slot, result.observed_ts):
            # the process was starved between the claim and the probe's start: the result would land in
            # another replica's slot, so it is dropped (the claimed slot goes without, and is counted)
            self.coordinator.late_dropped.inc()
            return None
        return replace(result, details={**result.details, "replica": self.coordinator.replica})
