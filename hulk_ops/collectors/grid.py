"""The collector's wake-up grid: the scheduler's start ticks and its periodic work fall on multiples of one
period, so that work due at once shares one wake-up of the event loop (at a few hundred probes a second
and less, waking up is most of a collector's CPU: `python -m bench.probe` reports wake-ups per probe)."""

from __future__ import annotations

import math

TICK_S = 0.100  # the scheduler's grid: a run starts at its nearest point, at most 50 ms from its plan


def grid_after(now: float, period: float) -> float:
    """The first multiple of `period` after `now` (loop time). uvloop's clock counts whole milliseconds, so
    timers at the same multiple fire in the same pass of the loop."""
    return (math.floor(now / period + 1e-9) + 1) * period
