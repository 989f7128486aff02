"""Who probes what: rendezvous (HRW) hashing over the live collectors, on wall-clock slots.

Pure functions, no I/O (the coordinator in `shard_coordinator.py` feeds them). The argument for
"each target probed by exactly one live replica per cycle" is in docs/scaling.md; in short:

- Time is cut into slots per target: slot k of target T starts at `k * interval + offset(T)`
  (wall clock, the same number on every replica). A probe belongs to the slot it starts in.
- A member (one incarnation of a replica) counts for slot t when `activate_at <= t < end`, where
  `activate_at` is set by the engine's clock at join + handover, and `end` is the graceful
  `leaving_at`, or (crash) the server time of the first snapshot that no longer showed its
  lease, plus the allowed clock skew.
- The owner of slot t of T is the member with the largest weight `mix64(hash(T) ^ hash(id))`
  among the members counting at t. Adding a member only moves targets to it; removing one
  only moves its own targets away.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hulk_ops.collectors.membership import MemberRecord

MASK = (1 << 64) - 1
INF = math.inf


def h64(text: str, salt: bytes = b"") -> int:
    """A stable 64-bit hash (the same in every process, unlike `hash()`)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, person=salt.ljust(16, b"\0")).digest(), "big")


def mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-mixed 64-bit permutation."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def mix64_np(x: np.ndarray) -> np.ndarray:
    """`mix64` over a uint64 array (wrapping multiplication, as above)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def target_hash(name: str) -> int:
    return h64(name, b"target")


def member_hash(replica: str) -> int:
    return h64(replica, b"member")


def slot_offset(name: str, interval_s: float) -> float:
    """Where in its interval a target's slots start: spread by name over the whole interval."""
    return h64(name, b"slot") / 2**64 * interval_s


def slot_index(ts: float, offset: float, interval_s: float) -> int:
    return math.floor((ts - offset) / interval_s)


def slot_start(k: int, offset: float, interval_s: float) -> float:
    return k * interval_s + offset


def next_slot_start(ts: float, offset: float, interval_s: float) -> float:
    """The first slot start at or after `ts`."""
    return slot_start(math.ceil((ts - offset) / interval_s), offset, interval_s)


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One run of one replica, as the members' records describe it."""

    id: str
    token: str
    hash: int
    activate_at: float
    end: float = INF  # min(leaving_at, first seen gone + skew)
    leaving_at: float | None = None

    def counts_at(self, t: float) -> bool:
        return self.activate_at <= t < self.end

    @classmethod
    def from_record(cls, record: MemberRecord) -> Incarnation:
        leaving = record.get("leaving_at")
        leaving_at = float(leaving) if leaving else None
        return cls(id=str(record["id"]), token=str(record["token"]), hash=member_hash(str(record["id"])),
                   activate_at=float(record["activate_at"]), end=leaving_at if leaving_at is not None else INF,
                   leaving_at=leaving_at)


def merge_members(previous: Iterable[Incarnation], records: Sequence[MemberRecord], server_time: float,
                  skew_s: float, retain_s: float) -> tuple[Incarnation, ...]:
    """The new local view after a snapshot taken at `server_time`.

    An incarnation that was known and is no longer in the snapshot ends at `server_time + skew_s`
    (its lease expired before the snapshot; see docs/scaling.md). One that ended is kept for
    `retain_s` so slots that started before its end are still decided the same way.
    """
    known = {(m.id, m.token): m for m in previous}
    out: list[Incarnation] = []
    for record in records:
        fresh = Incarnation.from_record(record)
        old = known.pop((fresh.id, fresh.token), None)
        if old is not None and old.end < INF and old.leaving_at is None:
            fresh = replace(fresh, end=min(old.end, fresh.end))  # once seen gone, it stays gone
        out.append(fresh)
    for gone in known.values():
        end = min(gone.end, server_time + skew_s)
        if end > server_time - retain_s:
            out.append(replace(gone, end=end))
    return tuple(sorted(out, key=lambda m: (m.id, m.activate_at)))


def owner(target_hash: int, members: Sequence[Incarnation], t: float) -> str | None:
    """The member that owns slot `t` of a target (None: no member counts at t)."""
    best: str | None = None
    best_weight = -1
    for member in members:
        if member.counts_at(t):
            weight = mix64(target_hash ^ member.hash)
            if weight > best_weight or (weight == best_weight and best is not None and member.id < best):
                best, best_weight = member.id, weight
    return best


def balance(target_hashes: np.ndarray, members: Sequence[Incarnation], t: float) -> dict[str, int]:
    """How many targets each member owns at time t (vectorised HRW over every target)."""
    counting = sorted({m.id: m for m in members if m.counts_at(t)}.values(), key=lambda m: m.id)
    if not counting:
        return {}
    if target_hashes.size == 0:
        return {m.id: 0 for m in counting}
    member_hashes = np.array([m.hash for m in counting], dtype=np.uint64)
    weights = mix64_np(target_hashes[:, None] ^ member_hashes[None, :])
    counts = np.bincount(np.argmax(weights, axis=1), minlength=len(counting))
    return {m.id: int(c) for m, c in zip(counting, counts, strict=True)}


def assign(targets: Iterable[str], replicas: Iterable[str]) -> dict[str, str]:
    """target -> owner when exactly these replicas are live (what a settled cluster converges to)."""
    members = [Incarnation(r, "", member_hash(r), -INF) for r in replicas]
    return {t: owner(target_hash(t), members, 0.0) or "" for t in targets}
