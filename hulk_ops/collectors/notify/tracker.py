"""Incident state for notifications: one notification per incident, opened, updated and resolved.

Each evaluation groups the current statuses by root cause (`hulk_ops.core.incidents.group`) and
compares them with the tracked incidents (persisted in Redis between evaluations and restarts):

- a new root is *pending* for `group_wait_s`: targets that fail meanwhile because of it are folded
  in, and a target that turns out to be explained by another failing root never opens its own;
- then `open` is sent once, naming the root and every dependent;
- news is sent as `update`, at most every `update_interval_s`: the root's status changed, or new
  dependents fail; dependents that recover before their root are not news (on recovery they
  usually do, as their root's breaker waits for its trial);
- when the root is no longer failing, `resolve` is sent (always, for every incident that was opened),
  naming every dependent the incident ever reported;
- an opened incident whose root becomes explained by another *opened* incident is closed with an
  `update` saying so (`merged_into`); the other incident's resolve covers it;
- silences: nothing is sent for a silenced root; when its window ends the open (still failing) or
  the resolve (recovered meanwhile, if the open had been sent) goes out. A pending incident that
  recovers inside the window was never told, so nothing is sent for it.

Pure: statuses, silences and the clock in; notices and the new state out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hulk_ops.core.incidents import FAILING, SEVERITY, group, roots_of

EventType = Literal["open", "update", "resolve", "repeat"]


@dataclass(slots=True)
class Tracked:
    id: str
    root: str
    status: str
    dependents: list[str]
    first_seen: float
    opened_at: float | None = None
    last_sent_at: float | None = None
    sent_status: str | None = None
    sent_dependents: list[str] = field(default_factory=list)
    cleared_at: float | None = None  # the root recovered, the resolve waits for a silence to end
    routed: list[str] = field(default_factory=list)  # webhooks told about it (set by the notifier)

    @property
    def opened(self) -> bool:
        return self.opened_at is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tracked:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Notice:
    event: EventType
    incident_id: str
    root: str
    status: str  # the root's status at the time: down | degraded | up (resolve)
    dependents: tuple[str, ...]
    opened_at: float
    at: float
    merged_into: tuple[str, ...] = ()
    previous_status: str | None = None  # the root's status in the notice sent before this one
    routed: tuple[str, ...] = ()  # webhooks told about this incident before

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.status, "info")

    @property
    def closes(self) -> bool:
        """The incident ends with this notice (resolved, or merged into another incident)."""
        return self.event == "resolve" or bool(self.merged_into)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["dependents"] = list(self.dependents)
        data["merged_into"] = list(self.merged_into)
        data["routed"] = list(self.routed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        return cls(event=data["event"], incident_id=data["incident_id"], root=data["root"], status=data["status"],
                   dependents=tuple(data.get("dependents") or ()), opened_at=float(data["opened_at"]),
                   at=float(data["at"]), merged_into=tuple(data.get("merged_into") or ()),
                   previous_status=data.get("previous_status"), routed=tuple(data.get("routed") or ()))


@dataclass(frozen=True, slots=True)
class Policy:
    group_wait_s: float = 30.0
    update_interval_s: float = 120.0


class IncidentTracker:
    def __init__(self, depends_on: Mapping[str, Sequence[str]], policy: Policy,
                 state: Mapping[str, Tracked] | None = None) -> None:
        self.depends_on = depends_on
        self.policy = policy
        self.state: dict[str, Tracked] = dict(state or {})

    def step(self, statuses: Mapping[str, str], now: float,
             silenced: Callable[[str], bool] = lambda _name: False) -> list[Notice]:
        notices: list[Notice] = []
        current = {incident.root: incident for incident in group(statuses, self.depends_on)}
        for root, incident in current.items():
            tracked = self.state.get(root)
            if tracked is None:
                tracked = self.state[root] = Tracked(f"{root}-{int(now * 1000)}", root, incident.status,
                                                     list(incident.dependents), first_seen=now)
            tracked.status, tracked.dependents, tracked.cleared_at = incident.status, list(incident.dependents), None
            if silenced(root):
                continue
            notice = self._open_or_update(tracked, now)
            if notice is not None:
                notices.append(notice)
        for root in [r for r in self.state if r not in current]:
            notice = self._gone(self.state[root], statuses, now, silenced)
            if notice is not None:
                notices.append(notice)
        return notices

    def _open_or_update(self, tracked: Tracked, now: float) -> Notice | None:
        if not tracked.opened:
            if now - tracked.first_seen < self.policy.group_wait_s:
                return None
            tracked.opened_at = now
            return self._sent(tracked, "open", now)
        news = tracked.status != tracked.sent_status or not set(tracked.dependents) <= set(tracked.sent_dependents)
        if news and now - (tracked.last_sent_at or 0.0) >= self.policy.update_interval_s:
            return self._sent(tracked, "update", now)
        return None

    def _gone(self, tracked: Tracked, statuses: Mapping[str, str], now: float,
              silenced: Callable[[str], bool]) -> Notice | None:
        """The tracked root no longer leads an incident: recovered, or explained by another root."""
        root = tracked.root
        if not tracked.opened:  # never told anyone: forget it
            del self.state[root]
            return None
        if statuses.get(root) in FAILING:
            explaining = sorted(r for r in roots_of(root, statuses, self.depends_on)
                                if r in self.state and self.state[r].opened)
            if not explaining:
                return None  # its new root is still pending: keep this incident as it is for now
            del self.state[root]
            return self._notice(tracked, "update", now, merged_into=tuple(explaining), previous=tracked.sent_status)
        if silenced(root):
            tracked.cleared_at = tracked.cleared_at or now
            return None
        del self.state[root]
        status = statuses.get(root, "unknown")
        return self._notice(dataclasses.replace(tracked, status=status, dependents=list(tracked.sent_dependents)),
                            "resolve", now, previous=tracked.sent_status)

    def _sent(self, tracked: Tracked, event: EventType, now: float) -> Notice:
        previous = tracked.sent_status
        tracked.last_sent_at = now
        tracked.sent_status = tracked.status
        tracked.sent_dependents = sorted({*tracked.sent_dependents, *tracked.dependents})
        return self._notice(tracked, event, now, previous=previous)

    def repeats(self, now: float, silenced: Callable[[str], bool] = lambda _name: False) -> list[Notice]:
        """What was last sent for each open incident, again (receivers that expire alerts want them re-posted)."""
        return [Notice("repeat", t.id, t.root, t.sent_status or t.status, tuple(t.sent_dependents),
                       t.opened_at or now, now, previous_status=t.sent_status, routed=tuple(t.routed))
                for t in self.state.values() if t.opened and t.cleared_at is None and not silenced(t.root)]

    @staticmethod
    def _notice(tracked: Tracked, event: EventType, now: float, merged_into: tuple[str, ...] = (),
                previous: str | None = None) -> Notice:
        return Notice(event, tracked.id, tracked.root, tracked.status, tuple(tracked.dependents),
                      tracked.opened_at or now, now, merged_into, previous, tuple(tracked.routed))
