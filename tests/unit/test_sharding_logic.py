"""Sharding logic without servers: HRW, slots, the view merge, and the coordinator on a fake clock.

The coordinator runs against `MemoryMembership` (the same lease semantics as the Redis adapter)
and an explicit clock, so joins, graceful leaves and crashes are replayed slot by slot and every
slot of every target is checked to have exactly one owner among the live replicas.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hulk_ops.collectors import sharding
from hulk_ops.collectors.membership import MemoryMembership
from hulk_ops.collectors.shard_coordinator import ShardCoordinator
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.config import ShardingSettings, TargetSettings

SETTINGS = ShardingSettings(enabled=True, membership_ttl_s=1.0, sync_s=0.25, handover_s=1.0, max_clock_skew_s=0.05)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def targets(n: int, interval: float = 2.0) -> list[TargetSettings]:
    return [TargetSettings(name=f"t{i:04d}", kind="redis", url="redis://x", interval_s=interval) for i in range(n)]


def test_mix64_python_and_numpy_agree():
    values = [0, 1, 2**63, 2**64 - 1, sharding.h64("x"), sharding.h64("y", b"member")]
    assert [int(v) for v in sharding.mix64_np(np.array(values, dtype=np.uint64))] == [sharding.mix64(v) for v in values]


def test_hrw_is_balanced_and_moves_only_what_it_must():
    names = [f"t{i}" for i in range(10_000)]
    three = sharding.assign(names, ["a", "b", "c"])
    counts = Counter(three.values())
    assert max(counts.values()) / min(counts.values()) < 1.1, counts
    four = sharding.assign(names, ["a", "b", "c", "d"])
    moved = {t for t in names if three[t] != four[t]}
    assert all(four[t] == "d" for t in moved)  # a joiner only takes, nobody else reshuffles
    assert 0.2 < len(moved) / len(names) < 0.3
    two = sharding.assign(names, ["a", "b"])
    assert all(two[t] == three[t] for t in names if three[t] != "c")  # a leaver's targets only


def test_balance_counts_match_the_per_target_owner():
    names = [f"t{i}" for i in range(2000)]
    members = [sharding.Incarnation(r, "x", sharding.member_hash(r), 0.0) for r in ("a", "b", "c")]
    hashes = np.array([sharding.target_hash(n) for n in names], dtype=np.uint64)
    assert sharding.balance(hashes, members, 1.0) == dict(Counter(sharding.assign(names, ["a", "b", "c"]).values()))


def test_slots_are_aligned_to_the_wall_clock_per_target():
    off = sharding.slot_offset("t1", 15.0)
    assert 0 <= off < 15.0 and off == sharding.slot_offset("t1", 15.0)
    start = sharding.next_slot_start(1000.0, off, 15.0)
    assert 1000.0 <= start < 1015.0 and (start - off) % 15.0 == pytest.approx(0.0, abs=1e-6)
    assert sharding.slot_index(start, off, 15.0) == sharding.slot_index(start + 14.9, off, 15.0)


def test_a_member_seen_gone_ends_at_the_snapshot_plus_skew_and_stays_gone():
    rec = {"id": "a", "token": "1", "activate_at": "10.0"}
    view = sharding.merge_members((), [rec], 20.0, 0.1, 60.0)
    assert view[0].end == sharding.INF
    gone = sharding.merge_members(view, [], 30.0, 0.1, 60.0)
    assert gone[0].end == pytest.approx(30.1)
    assert sharding.merge_members(gone, [], 200.0, 0.1, 60.0) == ()  # forgotten after retain_s
    leaving = sharding.merge_members(view, [{**rec, "leaving_at": "25.0"}], 21.0, 0.1, 60.0)
    assert leaving[0].end == 25.0 and sharding.merge_members(leaving, [], 40.0, 0.1, 60.0)[0].end == 25.0


class Cluster:
    """Replicas on one fake clock and one in-memory membership."""

    def __init__(self, n_targets: int = 300) -> None:
        self.clock = Clock()
        self.mono = Clock(50.0)
        self.engine = MemoryMembership(clock=self.clock)
        self.targets = targets(n_targets)
        self.replicas: dict[str, ShardCoordinator] = {}

    def start(self, rid: str) -> ShardCoordinator:
        coord = ShardCoordinator(rid, SETTINGS, self.engine, self.targets, CollectorMetrics(),
                                 wall=self.clock, mono=self.mono)
        coord.sync_once()
        self.replicas[rid] = coord
        return coord

    def advance(self, seconds: float, step: float = 0.05, sync: set[str] | None = None) -> Counter[tuple[str, int]]:
        """Move time; every replica syncs every sync_s and claims every target at its slot start."""
        claims: Counter[tuple[str, int]] = Counter()
        end = self.clock.now + seconds
        next_sync = {rid: self.clock.now for rid in self.replicas}
        while self.clock.now < end:
            self.clock.now += step
            self.mono.now += step
            for rid, coord in self.replicas.items():
                if (sync is None or rid in sync) and self.clock.now >= next_sync[rid]:
                    coord.sync_once()
                    next_sync[rid] = self.clock.now + SETTINGS.sync_every_s
            for rid, coord in self.replicas.items():
                if sync is not None and rid not in sync:
                    continue  # a crashed replica does nothing
                for t in self.targets:
                    if coord.owns(t.name):
                        k = coord.claim(t.name)
                        if k is not None:
                            claims[(t.name, k)] += 1
        return claims


def slots_between(names: list[TargetSettings], start: float, end: float) -> set[tuple[str, int]]:
    """Slots that start in (start + 0.1, end - 0.5): a slot may be claimed up to 0.05 s before it starts."""
    out = set()
    for t in names:
        off = sharding.slot_offset(t.name, t.interval_s)
        k = sharding.slot_index(start + 0.1, off, t.interval_s) + 1
        while sharding.slot_start(k, off, t.interval_s) < end - 0.5:
            out.add((t.name, k))
            k += 1
    return out


def test_join_then_steady_state_every_slot_exactly_once():
    cluster = Cluster()
    cluster.start("a")
    cluster.advance(1.5)  # a is active alone
    t0 = cluster.clock.now
    cluster.start("b")
    cluster.start("c")
    claims = cluster.advance(8.0)
    expected = slots_between(cluster.targets, t0, cluster.clock.now)
    assert {key for key, n in claims.items() if n > 1} == set()
    assert expected - set(claims) == set()  # joins hand over without a gap
    assert {r: c.owned for r, c in cluster.replicas.items()} == dict(
        Counter(sharding.assign([t.name for t in cluster.targets], ["a", "b", "c"]).values()))


def test_graceful_leave_hands_over_without_gap_or_double():
    cluster = Cluster()
    for rid in ("a", "b", "c"):
        cluster.start(rid)
    cluster.advance(3.0)
    t0 = cluster.clock.now
    leaving_at = cluster.replicas["b"]._leave()
    assert leaving_at == pytest.approx(t0 + SETTINGS.handover_s)
    claims = cluster.advance(6.0)
    assert {key for key, n in claims.items() if n > 1} == set()
    assert slots_between(cluster.targets, t0, cluster.clock.now) - set(claims) == set()
    assert cluster.replicas["b"].owned == 0


def test_crash_takeover_within_ttl_plus_sync_and_no_double():
    cluster = Cluster()
    for rid in ("a", "b", "c"):
        cluster.start(rid)
    cluster.advance(3.0)
    crashed_at = cluster.clock.now
    claims = cluster.advance(6.0, sync={"a", "c"})  # b stops renewing and probing (kill -9)
    assert {key for key, n in claims.items() if n > 1} == set()
    orphans = [t for t in cluster.targets
               if sharding.assign([t.name], ["a", "b", "c"])[t.name] == "b"]
    bound = SETTINGS.membership_ttl_s + SETTINGS.sync_every_s + SETTINGS.max_clock_skew_s + 0.1
    for t in orphans:
        off = sharding.slot_offset(t.name, t.interval_s)
        first = min(k for (name, k) in claims if name == t.name)
        assert sharding.slot_start(first, off, t.interval_s) < crashed_at + bound + t.interval_s
    assert cluster.replicas["a"].owned + cluster.replicas["c"].owned == len(cluster.targets)


def test_a_replica_whose_lease_lapsed_stops_claiming():
    cluster = Cluster(50)
    coord = cluster.start("a")
    cluster.advance(1.5)
    assert any(coord.owns(t.name) for t in cluster.targets)
    cluster.clock.now += 2.0  # no renewal for longer than the TTL: a stalled process
    cluster.mono.now += 2.0
    assert not any(coord.owns(t.name) for t in cluster.targets)
    assert coord.uncoordinated._value.get() > 0


def test_engine_down_fails_open_on_the_last_view_but_a_timeout_does_not():
    cluster = Cluster(50)
    coord = cluster.start("a")
    cluster.advance(1.5)
    cluster.engine.failing = True  # connection refused: down for everyone
    cluster.clock.now += 3.0
    cluster.mono.now += 3.0
    coord.sync_once()
    assert coord.view.engine_error
    assert any(coord.owns(t.name) for t in cluster.targets)
    strict = ShardCoordinator("b", SETTINGS.model_copy(update={"fail_open": False}), cluster.engine, cluster.targets,
                              CollectorMetrics(), wall=cluster.clock, mono=cluster.mono)
    strict.sync_once()
    assert not any(strict.owns(t.name) for t in cluster.targets)


def test_settings_reject_periods_that_break_the_handover():
    with pytest.raises(ValueError, match="handover_s"):
        ShardingSettings(membership_ttl_s=5, sync_s=1, handover_s=1)
    with pytest.raises(ValueError, match="membership_ttl_s / 2"):
        ShardingSettings(membership_ttl_s=1, sync_s=0.9, handover_s=2)
