"""What a kind module may declare besides `Settings` and `PROBE`: capacity resources and its example target."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple


class CapacityItem(NamedTuple):
    """One thing of a target that fills up (or only grows), read from its newest metrics.

    `unit` is how the capacity page shows it (bytes | count | cores | GiB | GPUs); `metric` names the tracked
    metric holding its history (the trend), None when it has none.
    """

    name: str
    used: float
    limit: float | None
    unit: str
    metric: str | None


# a kind's capacity extractor: the newest metrics of one target -> its resources
CapacityFn = Callable[[Mapping[str, float]], Iterable[CapacityItem]]


def limit_of(metrics: Mapping[str, float], name: str) -> float | None:
    """A limit metric's value when it is set and positive (0 or absent: no limit)."""
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and value > 0 else None
