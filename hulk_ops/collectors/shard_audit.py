"""Audit of a sharded run from what the store kept: was every slot of every target probed once?

Reads the per-target history chunks (one sample per probe, 0.1 s resolution) and counts samples
per slot (`hulk_ops/collectors/sharding.py`). Used by the scaling tests and `python -m bench.scaling`; an
operator can run it against a live store as well.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from hulk_ops.collectors.codec import Keys, decode_samples, hours_between
from hulk_ops.collectors.sharding import slot_index, slot_offset, slot_start
from hulk_ops.core.config import TargetSettings

QUANTUM_S = 0.1  # history timestamps are truncated to deciseconds
EARLY_S = 0.05  # a run may start this much before its slot (hulk_ops/collectors/shard_coordinator.py)


@dataclass
class SlotAudit:
    slots: int = 0  # slots audited over all targets
    doubles: list[tuple[str, float, int]] = field(default_factory=list)  # (target, slot start, probes)
    missing: list[tuple[str, float]] = field(default_factory=list)  # (target, slot start)

    @property
    def ok(self) -> bool:
        return not self.doubles and not self.missing


def probe_times(client: redis.Redis, keys: Keys, name: str, start: float, end: float) -> list[float]:
    """Start times of the probes of one target stored between start and end (truncated to 0.1 s)."""
    hours = hours_between(start, end)
    blobs: list[bytes | None] = client.mget([keys.history(name, h) for h in hours])  # type: ignore[assignment]  # bytes: no decode_responses
    return [float(ts) for ts in decode_samples(list(zip(hours, blobs, strict=True)), start, end)["ts"]]


def slot_counts(client: redis.Redis, keys: Keys, target: TargetSettings, start: float, end: float) -> Counter[int]:
    """Probes per slot index of one target, for probes stored between start and end."""
    offset = slot_offset(target.name, target.interval_s)
    # a stored ts is up to 0.1 s before the real start, which is at most EARLY_S before its slot's start
    # the same result stored twice (a batch re-sent after its reply was lost) is one probe, not two
    times = set(probe_times(client, keys, target.name, start - 1, end + 1))
    return Counter(slot_index(ts + QUANTUM_S + EARLY_S, offset, target.interval_s) for ts in times)


def audit(client: redis.Redis, keys: Keys, targets: Sequence[TargetSettings], start: float, end: float,
          allowed_gaps: dict[str, tuple[float, float]] | None = None) -> SlotAudit:
    """Check every slot that starts in [start, end - interval]: exactly one probe.

    `allowed_gaps[target] = (t0, t1)`: a slot starting in that window may be missing (a crash).
    """
    result = SlotAudit()
    allowed_gaps = allowed_gaps or {}
    for target in targets:
        offset, interval = slot_offset(target.name, target.interval_s), target.interval_s
        counts = slot_counts(client, keys, target, start, end + interval)
        first = math.ceil((start - offset) / interval)
        last = slot_index(end - interval, offset, interval)
        gap = allowed_gaps.get(target.name)
        for k in range(first, last + 1):
            result.slots += 1
            seen = counts.get(k, 0)
            t = slot_start(k, offset, interval)
            if seen > 1:
                result.doubles.append((target.name, round(t, 3), seen))
            elif seen == 0 and not (gap and gap[0] <= t < gap[1]):
                result.missing.append((target.name, round(t, 3)))
    return result
