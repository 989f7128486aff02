"""Opt-in heap sampling for the soak benchmark: the sampler lives in `bench/heapstats.py`, a checkout-only
module, and is imported only when `HULK_OPS_HEAP_STATS` names a folder (never in an installed wheel's normal run)."""

from __future__ import annotations

import os


def start(component: str) -> None:
    if not os.environ.get("HULK_OPS_HEAP_STATS"):
        return
    from bench import heapstats

    heapstats.start(component)
