"""The domain's value objects: what a probe reports and what the collector records.

`ProbeResult` has one fixed shape for every backend kind. Its first eight fields are the public
contract printed by `hulk-ops probe --json`; `details` carries structured extras (pods, alerts,
events) that views need but that are not numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

Status = Literal["up", "degraded", "down"]
# what the store keeps as JSON (heartbeats, breaker states): what orjson writes and reads back
JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
STATUSES: tuple[Status, ...] = ("up", "degraded", "down")
# Compact codes used by the packed history; "stale" is never stored, only derived when reading.
STATUS_CODE: dict[str, int] = {"up": 0, "degraded": 1, "down": 2}
STALE_INTERVALS = 3  # a latest result older than this many intervals is stale
CODE_STATUS: dict[int, Status] = {v: k for k, v in STATUS_CODE.items()}  # type: ignore[misc]

PUBLIC_FIELDS = ("target", "kind", "status", "latency_ms", "version", "metrics", "error", "observed_at")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    target: str
    kind: str
    status: Status
    latency_ms: float | None
    version: str | None
    metrics: dict[str, float]
    error: str | None
    observed_at: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def observed_ts(self) -> float:
        return parse_iso(self.observed_at).timestamp()

    def public(self) -> dict[str, Any]:
        """The contract fields only, in their documented order."""
        return {name: getattr(self, name) for name in PUBLIC_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            target=data["target"],
            kind=data["kind"],
            status=data["status"],
            latency_ms=data.get("latency_ms"),
            version=data.get("version"),
            metrics=dict(data.get("metrics") or {}),
            error=data.get("error"),
            observed_at=data["observed_at"],
            details=dict(data.get("details") or {}),
        )

    def with_status(self, status: Status, error: str | None) -> ProbeResult:
        return dataclasses.replace(self, status=status, error=error)


def clean_metrics(raw: Mapping[str, object]) -> dict[str, float]:
    """Keep only finite numbers; booleans become 0/1. Probes hand us whatever their client parsed."""
    out: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool):
            out[name] = 1.0 if value else 0.0
        elif isinstance(value, int | float) and math.isfinite(value):
            out[name] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class StateChange:
    """A target's status moved from one value to another (first observation: previous is None)."""

    target: str
    kind: str
    previous: str | None
    current: Status
    error: str | None
    at: str

    def fields(self) -> dict[str, str]:
        return {
            "source": "probe",
            "type": "state_change",
            "target": self.target,
            "kind": self.kind,
            "previous": self.previous or "",
            "current": self.current,
            "error": self.error or "",
            "at": self.at,
        }
