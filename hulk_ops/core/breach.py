"""Rule messages that name the object: the optional per-kind hook a rule's message is built with.

A kind module may declare ``describe_breach(metric, value, result)``: given a metric a rule found in breach,
its value and the probe's result (metrics and details), it returns what is wrong in the operator's words
(``"deployment hulk/api: 1 of 3 available"``), several such lines for an aggregate metric (which deployments
are short), or None for the generic ``"<metric> = <value> (<op> <threshold>)"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hulk_ops.core.model import ProbeResult

Describer = Callable[[str, float, ProbeResult], str | Sequence[str] | None]


def number(value: float) -> str:
    """A count with thousands separators (11,000); other values compact (99.5)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def between(metric: str, prefix: str, suffix: str) -> str | None:
    """The object named between a prefix and a suffix (`node.` cpu-node-2 `.ready`), None when it does not fit."""
    if metric.startswith(prefix) and metric.endswith(suffix) and len(metric) > len(prefix) + len(suffix):
        return metric[len(prefix):len(metric) - len(suffix)]
    return None

