"""Open incidents with their probable root cause, when they started and what changed just before.

Grouping is `hulk_ops.core.incidents.group` over the current statuses and the targets' `depends_on`
(the same function the notifier uses). An incident starts when its root's current failing streak
began: the oldest state change into down/degraded of the root's unbroken run of failing changes
(its own event stream), else its newest result's time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from hulk_ops.core.incidents import FAILING, Incident
from hulk_ops.dashboard.readmodel.store import ReadModel, TargetView
from hulk_ops.dashboard.readmodel.timeline import Filters, TimelineEntry, timeline

BEFORE_S = 1800.0


@dataclass(frozen=True, slots=True)
class OpenIncident:
    incident: Incident
    root: TargetView
    dependents: list[TargetView]
    started_at: float | None
    before: list[TimelineEntry] = field(default_factory=list)  # everything in the BEFORE_S before it started
    during: list[TimelineEntry] = field(default_factory=list)  # its own targets' entries since it started


def failing_since(model: ReadModel, view: TargetView) -> float | None:
    """When the target's current failing streak began (None: it is not failing)."""
    if view.status not in FAILING:
        return None
    start = None
    for event in model.events(200, target=view.name):
        f = event.fields
        if f.get("type", "state_change") != "state_change" or "current" not in f:
            continue
        if f["current"] not in FAILING:
            break
        start = _at(f.get("at"), event.ts)
        if f.get("previous") not in FAILING:
            break
    if start is None and view.result is not None:
        start = view.result.observed_ts
    return start


def _at(text: str | None, fallback: float) -> float:
    from hulk_ops.core.model import parse_iso

    try:
        return parse_iso(text).timestamp() if text else fallback
    except ValueError:
        return fallback


def open_incidents(model: ReadModel, views: Sequence[TargetView] | None = None, now: float | None = None,
                   context_for: str | None = None, grouped: Sequence[Incident] | None = None,
                   limit: int | None = None) -> list[OpenIncident]:
    """Open incidents, most severe first (the first `limit`, and `context_for` wherever it ranks); the
    `context_for` root also gets its before/during timeline."""
    now = time.time() if now is None else now
    views = model.target_views(now) if views is None else views
    by_name = {v.name: v for v in views}
    out = []
    for rank, incident in enumerate(model.incidents(views) if grouped is None else grouped):
        if limit is not None and rank >= limit and incident.root != context_for:
            continue
        root = by_name[incident.root]
        started = failing_since(model, root)
        before: list[TimelineEntry] = []
        during: list[TimelineEntry] = []
        if incident.root == context_for and started is not None:
            before = timeline(model, started - BEFORE_S, started, views=views)
            during = timeline(model, started, now, Filters(targets=incident.targets), views=views)
        out.append(OpenIncident(incident, root, [by_name[d] for d in incident.dependents], started, before, during))
    return out
