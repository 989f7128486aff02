"""Status rules: the one place that decides when a reachable target is degraded (or down).

Probes only measure. A rule is data: ``"<metric glob> <op> <number>"``, optionally followed by
``-> down`` (default ``-> degraded``), or ``"<metric glob> off"`` to switch a default off. The
pseudo-metric ``latency_ms`` is the probe's latency. Rules come in three layers, each replacing
the previous one's rule for the same glob: the kind's ``DEFAULT_RULES`` (in its module), the config's top-level
``rules: {kind: [...]}``, and the target's own ``rules: [...]``.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from hulk_ops.core.model import ProbeResult, Status

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RULE = re.compile(
    r"^\s*(?P<glob>[A-Za-z0-9_.*?\[\]:/-]+)\s+"
    r"(?:(?P<off>off)|(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))"
    r"(?:\s*->\s*(?P<status>degraded|down))?\s*$"
)


@dataclass(frozen=True, slots=True)
class Rule:
    glob: str
    op: str | None  # None: the rule switches the glob off
    value: float
    status: Status
    text: str

    def matcher(self) -> re.Pattern[str]:
        return re.compile(fnmatch.translate(self.glob))


def parse_rule(text: str) -> Rule:
    if not isinstance(text, str):
        raise ValueError(f"rule must be a string like 'memory_used_pct > 90', got {type(text).__name__}")
    match = _RULE.match(text)
    if not match:
        raise ValueError(
            f"bad rule {text!r}: expected '<metric> <op> <number> [-> degraded|down]' or '<metric> off'"
        )
    if match["off"]:
        return Rule(match["glob"], None, 0.0, "degraded", text.strip())
    return Rule(match["glob"], match["op"], float(match["value"]), cast(Status, match["status"] or "degraded"),
                text.strip())


class RuleSet:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = [r for r in rules if r.op is not None]
        self._compiled = [(r, r.matcher(), _OPS[r.op]) for r in self.rules if r.op]
        self._by_name: dict[str, tuple[int, ...]] = {}  # metric name -> indexes of the rules whose glob matches

    @classmethod
    def for_target(cls, kind: str, kind_overrides: list[str], target_rules: list[str],
                   defaults: Sequence[str] | None = None) -> RuleSet:
        """The three layers; `defaults` None: the kind's own `DEFAULT_RULES`, read through the registry."""
        if defaults is None:
            from hulk_ops.probes import registry

            defaults = registry.default_rules(kind)
        by_glob: dict[str, Rule] = {}
        for layer in (defaults, kind_overrides, target_rules):
            for text in layer:
                rule = parse_rule(text)
                by_glob[rule.glob] = rule
        return cls(list(by_glob.values()))

    def _rules_for(self, name: str) -> tuple[int, ...]:
        """The rules whose glob matches a metric name, matched once per name (a probe reports the same names
        every cycle; a glob match per rule and metric was ~50 regex calls per probe)."""
        found = self._by_name.get(name)
        if found is None:
            found = tuple(i for i, (_rule, pattern, _op) in enumerate(self._compiled) if pattern.match(name))
            if len(self._by_name) < 4096:
                self._by_name[name] = found
        return found

    def evaluate(self, result: ProbeResult) -> ProbeResult:
        """Apply the rules to a reachable result; a down result is returned unchanged."""
        if result.status == "down":
            return result
        values = dict(result.metrics)
        if result.latency_ms is not None:
            values["latency_ms"] = result.latency_ms
        worst: Status = result.status
        hits: list[tuple[int, int, str, float]] = []
        for position, (name, value) in enumerate(values.items()):
            for index in self._rules_for(name):
                rule, _pattern, op = self._compiled[index]
                if op(value, rule.value):
                    hits.append((index, position, name, value))
        reasons: list[str] = []
        for index, _position, name, value in sorted(hits):  # rule by rule, metrics in order, as documented
            rule = self._compiled[index][0]
            reasons.append(f"{name} = {value:g} ({rule.op} {rule.value:g})")
            if rule.status == "down" or worst == "up":
                worst = rule.status
        if not reasons:
            return result
        if result.error:
            reasons.insert(0, result.error)
        shown = reasons[:5] + ([f"and {len(reasons) - 5} more"] if len(reasons) > 5 else [])
        return result.with_status(worst, "; ".join(shown))
