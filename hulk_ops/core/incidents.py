"""Root-cause grouping: which failing targets are explained by a failing dependency.

Targets declare `depends_on`. A failing target (down or degraded) whose dependency (directly or
through other failing targets) is failing is a *dependent*; a failing target with no failing
dependency is a *root*. One incident per root, carrying every dependent it explains. A dependent
explained by two roots appears in both incidents (the views and the notifier fold it into each).
Pure functions: statuses and the dependency graph in, incidents out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FAILING = ("down", "degraded")
SEVERITY = {"down": "critical", "degraded": "warning"}


@dataclass(frozen=True, slots=True)
class Incident:
    root: str
    status: str  # the root's status: down | degraded
    dependents: tuple[str, ...] = field(default_factory=tuple)  # failing targets it explains, sorted

    @property
    def severity(self) -> str:
        return SEVERITY[self.status]

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.root, *self.dependents)


def failing_dependencies(name: str, statuses: Mapping[str, str], depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    return [d for d in depends_on.get(name, ()) if statuses.get(d) in FAILING]


def roots_of(name: str, statuses: Mapping[str, str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """The failing roots that explain `name` (itself, when no dependency of it is failing)."""
    roots: set[str] = set()
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        deps = failing_dependencies(current, statuses, depends_on)
        if not deps:
            roots.add(current)
        stack.extend(deps)
    return roots


def group(statuses: Mapping[str, str], depends_on: Mapping[str, Sequence[str]]) -> list[Incident]:
    """Incidents for the current statuses, most severe first, then by size, then by name."""
    explained: dict[str, set[str]] = {}
    for name, status in statuses.items():
        if status not in FAILING:
            continue
        for root in roots_of(name, statuses, depends_on):
            members = explained.setdefault(root, set())
            if root != name:
                members.add(name)
    incidents = [Incident(root, statuses[root], tuple(sorted(members))) for root, members in explained.items()]
    rank = {"down": 0, "degraded": 1}
    return sorted(incidents, key=lambda i: (rank[i.status], -len(i.dependents), i.root))


def explained_by(incidents: Sequence[Incident]) -> dict[str, list[str]]:
    """dependent -> the roots explaining it (for badges like "probably caused by orders-db")."""
    out: dict[str, list[str]] = {}
    for incident in incidents:
        for dependent in incident.dependents:
            out.setdefault(dependent, []).append(incident.root)
    return out
