"""Maintenance windows and silences: which targets are silenced, and until when.

A silence names targets and/or a label selector (every label must match), with a start, an end,
an author and a reason. It comes from the config (`silences:`, ids `config-<n>`) or from the
dashboard (kept in Redis, ids `s-<hex>`). A silence changes only what is *sent*: a silenced target
still shows its true state, with a "silenced until" badge. Pure functions; no I/O here.
"""

from __future__ import annotations

import secrets as secrets_mod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hulk_ops.core.config import Config, TargetSettings

OPERATOR_ROLES = ("operator", "admin")


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    start: float
    end: float
    author: str
    reason: str
    targets: tuple[str, ...] = ()
    selector: dict[str, str] = field(default_factory=dict)
    source: str = "dashboard"  # config | dashboard
    created_at: float | None = None

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def matches(self, target: TargetSettings) -> bool:
        if target.name in self.targets:
            return True
        return bool(self.selector) and all(target.labels.get(k) == v for k, v in self.selector.items())

    def scope(self) -> str:
        parts = list(self.targets) + [f"{k}={v}" for k, v in sorted(self.selector.items())]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Silence:
        return cls(
            id=str(data["id"]), start=float(data["start"]), end=float(data["end"]), author=str(data["author"]),
            reason=str(data["reason"]), targets=tuple(data.get("targets") or ()),
            selector=dict(data.get("selector") or {}), source=str(data.get("source", "dashboard")),
            created_at=data.get("created_at"),
        )


def new_id() -> str:
    return f"s-{secrets_mod.token_hex(6)}"


def from_config(config: Config) -> list[Silence]:
    return [
        Silence(id=f"config-{i}", start=s.start.timestamp(), end=s.end.timestamp(), author=s.author,
                reason=s.reason, targets=tuple(s.targets), selector=dict(s.selector), source="config")
        for i, s in enumerate(config.silences)
    ]


def silenced_until(target: TargetSettings, silences: Iterable[Silence], now: float) -> float | None:
    """The end of the window silencing `target` now (windows that touch are followed), or None."""
    mine = sorted((s for s in silences if s.matches(target)), key=lambda s: s.start)
    until: float | None = None
    for silence in mine:
        if silence.active(now) or (until is not None and silence.start <= until < silence.end):
            until = max(until or 0.0, silence.end)
    return until


def silenced_map(targets: Sequence[TargetSettings], silences: Sequence[Silence], now: float) -> dict[str, float]:
    """target name -> silenced until, for every target silenced now."""
    out = {}
    for target in targets:
        until = silenced_until(target, silences, now)
        if until is not None:
            out[target.name] = until
    return out


def may_silence(role: str | None) -> bool:
    """Operators and admins may add or end silences; viewers and anonymous people may not."""
    return role in OPERATOR_ROLES
