"""Status rules: the one place that decides when a reachable target is degraded (or down).

Probes only measure. A rule is data: ``"<metric glob> <op> <number>"``, optionally followed by
``-> down`` (default ``-> degraded``), or ``"<metric glob> off"`` to switch a default off. The
pseudo-metric ``latency_ms`` is the probe's latency. Rules come in three layers, each replacing
the previous one's rule for the same glob: the kind's ``DEFAULT_RULES`` (in its module), the config's top-level
``rules: {kind: [...]}``, and the target's own ``rules: [...]``.

A breached rule's message names the object when the kind says how (its optional ``describe_breach``,
`hulk_ops.core.breach`): ``deployment hulk/api: 1 of 3 available``; otherwise it is
``<metric> = <value> (<op> <threshold>)``.
"""

from __future__ import annotations

import fnmatch
import logging
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from hulk_ops.core.breach import Describer
from hulk_ops.core.model import ProbeResult, Status

log = logging.getLogger(__name__)

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
    def __init__(self, rules: list[Rule], describe: Describer | None = None) -> None:
        self.rules = [r for r in rules if r.op is not None]
        self.describe = describe  # the kind's describe_breach: messages that name the object
        self._compiled = [(r, r.matcher(), _OPS[r.op]) for r in self.rules if r.op]
        self._by_name: dict[str, tuple[int, ...]] = {}  # metric name -> indexes of the rules whose glob matches

    @classmethod
    def for_target(cls, kind: str, kind_overrides: list[str], target_rules: list[str],
                   defaults: Sequence[str] | None = None, describe: Describer | None = None) -> RuleSet:
        """The three layers; `defaults` None: the kind's own `DEFAULT_RULES` and `describe_breach`, read through
        the registry."""
        if defaults is None:
            from hulk_ops.probes import registry

            defaults = registry.default_rules(kind)
            describe = describe or registry.breach_describer(kind)
        by_glob: dict[str, Rule] = {}
        for layer in (defaults, kind_overrides, target_rules):
            for text in layer:
                rule = parse_rule(text)
                by_glob[rule.glob] = rule
        return cls(list(by_glob.values()), describe)

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
            for reason in self._reasons(rule, name, value, result):
                # two rules on one object say it once, and not again what the probe's own note says
                if reason not in reasons and not (result.error and reason in result.error):
                    reasons.append(reason)
            if rule.status == "down" or worst == "up":
                worst = rule.status
        if not hits:
            return result
        if result.error:
            reasons.insert(0, result.error)
        shown = reasons[:5] + ([f"and {len(reasons) - 5} more"] if len(reasons) > 5 else [])
        return result.with_status(worst, "; ".join(shown))

    def _reasons(self, rule: Rule, name: str, value: float, result: ProbeResult) -> list[str]:
        """The kind's words for a breach when it has them, else the generic metric, value and threshold."""
        if self.describe is not None:
            try:
                described = self.describe(name, value, result)
            except Exception:  # a plugin's describer must never cost the verdict: the generic text stands
                log.warning("describe_breach of kind %s failed for %s", result.kind, name, exc_info=True)
                described = None
            lines = [described] if isinstance(described, str) else [str(x) for x in described or () if x]
            if any(lines):
                return [line for line in lines if line]
        return [f"{name} = {value:g} ({rule.op} {rule.value:g})"]
