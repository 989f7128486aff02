"""Error-budget burn alerts: multiwindow, multi-burn-rate (the Google SRE workbook's alerting on SLOs).

The burn rate of a window is the share of probe samples *down* over the share the availability
objective allows (1 - objective): at 1 the budget of the SLO period lasts exactly the period.

- **page**: burn rate >= 14.4 over 1 h and over the last 5 min (2 % of a 30-day budget in an hour, and
  still burning now);
- **ticket**: burn rate >= 6 over 6 h and over the last 30 min (5 % of it in six hours), when not paging.

Alerts are grouped by root cause: a target whose failure is explained by a failing root
(`core.incidents.roots_of` over `depends_on`) burns under that root's alert, so one outage of a
database sends one page naming every service whose budget it burns; once they work again, a target keeps
the root it burned under (the ticket that follows a page, as the long window still burns, names the same
cause). An alert opens when its group
first fires and resolves when none of its targets fires any more.

Pure: window counts, objectives, statuses and the previous state in; notices and the new state out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hulk_ops.core.incidents import FAILING, roots_of

WINDOWS_S = {"5m": 300, "30m": 1_800, "1h": 3_600, "6h": 21_600}
RULES = (  # severity, long window, short window, burn rate
    ("page", "1h", "5m", 14.4),
    ("ticket", "6h", "30m", 6.0),
)
MIN_SAMPLES = 3  # a window with fewer samples says nothing


def burn_rate(samples: int, down: int, objective_pct: float) -> float | None:
    if samples < MIN_SAMPLES or objective_pct >= 100.0:
        return None
    return (down / samples) / (1.0 - objective_pct / 100.0)


@dataclass(frozen=True, slots=True)
class Firing:
    target: str
    severity: str  # page | ticket
    long_rate: float
    short_rate: float


def firing(counts: Mapping[str, Mapping[str, tuple[int, int]]], objectives: Mapping[str, float]) -> list[Firing]:
    """The targets whose budget burns: counts are target -> window -> (samples, down)."""
    out = []
    for target, windows in counts.items():
        objective = objectives.get(target)
        if objective is None:
            continue
        for severity, long_w, short_w, threshold in RULES:
            long_rate = burn_rate(*windows.get(long_w, (0, 0)), objective)
            short_rate = burn_rate(*windows.get(short_w, (0, 0)), objective)
            if long_rate is not None and short_rate is not None and long_rate >= threshold \
                    and short_rate >= threshold:
                out.append(Firing(target, severity, round(long_rate, 2), round(short_rate, 2)))
                break  # a page covers the ticket
    return out


@dataclass(frozen=True, slots=True)
class BurnNotice:
    event: str  # burn | burn_resolve
    alert_id: str  # burn:<severity>:<root>
    severity: str
    root: str
    targets: tuple[str, ...]  # the burning targets (the root first when it burns itself)
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)  # target -> (long, short) burn rate
    opened_at: float = 0.0
    at: float = 0.0


def step(fired: Sequence[Firing], statuses: Mapping[str, str], depends_on: Mapping[str, Sequence[str]],
         state: Mapping[str, dict], now: float) -> tuple[dict[str, dict], list[BurnNotice]]:
    """Group what fires by (severity, root cause); open what is new, resolve what stopped. `state`: alert id ->
    {"opened_at", "targets"} as this returned it last time."""
    failing = {t for t, s in statuses.items() if s in FAILING}
    before = {t: alert["root"] for alert in state.values() for t in alert["targets"]}
    groups: dict[str, list[Firing]] = {}
    for f in fired:
        roots = sorted(roots_of(f.target, statuses, depends_on)) if f.target in failing else []
        # a target that works again keeps the root cause it burned under (its budget is still burning for it)
        root = next((r for r in roots if r != f.target), before.get(f.target, f.target))
        groups.setdefault(f"burn:{f.severity}:{root}", []).append(f)
    new_state: dict[str, dict] = {}
    notices = []
    for alert_id, members in sorted(groups.items()):
        _, severity, root = alert_id.split(":", 2)
        targets = tuple(sorted({m.target for m in members}, key=lambda t: (t != root, t)))
        rates = {m.target: (m.long_rate, m.short_rate) for m in members}
        previous = state.get(alert_id)
        opened_at = previous["opened_at"] if previous else now
        new_state[alert_id] = {"opened_at": opened_at, "targets": list(targets), "severity": severity, "root": root}
        if previous is None:
            notices.append(BurnNotice("burn", alert_id, severity, root, targets, rates, opened_at, now))
    for alert_id, previous in sorted(state.items()):
        if alert_id not in new_state:
            notices.append(BurnNotice("burn_resolve", alert_id, previous["severity"], previous["root"],
                                      tuple(previous["targets"]), {}, previous["opened_at"], now))
    return new_state, notices
