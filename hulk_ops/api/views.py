"""The read model's objects as JSON documents (what each endpoint returns).

No target URL is ever returned (it may carry a password); results carry the probes' own errors,
which are already redacted of secrets.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hulk_ops.core.model import CODE_STATUS
from hulk_ops.dashboard.readmodel import Event, Freshness, ReadModel, TargetView

WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_WINDOW_S = 31 * 86_400
MAX_POINTS = 5_000


class BadParameter(ValueError):
    """400: a query parameter is malformed; the message names it."""


def iso_ts(ts: object) -> str | None:
    """A Unix time as ISO 8601 UTC; None for anything that is not a number (absent from a stored record)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def freshness(fresh: Freshness) -> dict[str, Any]:
    return {"read_at": iso_ts(fresh.read_at), "last_write_age_s": _round(fresh.last_write_age_s),
            "collector_stale": fresh.collector_stale}


def target_summary(view: TargetView) -> dict[str, Any]:
    result = view.result
    return {
        "name": view.name, "kind": view.kind, "status": view.status,
        "latency_ms": result.latency_ms if result else None,
        "observed_at": result.observed_at if result else None,
        "age_s": _round(view.age_s), "stale": view.status == "stale",
        "labels": dict(view.settings.labels), "breaker": view.breaker,
        "silenced_until": iso_ts(view.silenced_until),
    }


def target_detail(view: TargetView) -> dict[str, Any]:
    s = view.settings
    result = view.result
    latest = None
    if result is not None:
        latest = {**result.public(), "details": result.details}
    return {
        **target_summary(view),
        "interval_s": s.interval_s, "timeout_s": s.timeout_s, "depends_on": list(s.depends_on),
        "runbook_url": s.runbook_url, "read_only": s.read_only, "latest": latest,
    }


def history(model: ReadModel, view: TargetView, window: str | None, now: float | None = None) -> dict[str, Any]:
    window_s = parse_window(window or "1h")
    end = time.time() if now is None else now
    start = end - window_s
    samples = model.history(view.name, start, end)
    stride = max(1, int(np.ceil(len(samples) / MAX_POINTS)))
    points = [{"ts": iso_ts(float(row["ts"])), "status": CODE_STATUS.get(int(row["status"]), "unknown"),
               "latency_ms": None if np.isnan(row["latency"]) else round(float(row["latency"]), 3)}
              for row in samples[::stride]]
    return {"target": view.name, "start": iso_ts(start), "end": iso_ts(end), "window_s": window_s,
            "samples": len(samples), "every_nth": stride, "points": points}


def parse_window(text: str) -> float:
    match = WINDOW.match(text.strip())
    if match is None:
        raise BadParameter(f"window: {text!r} is not a duration like 90s, 15m, 1h or 7d")
    seconds = float(match.group(1)) * UNIT_S[match.group(2)]
    if not 0 < seconds <= MAX_WINDOW_S:
        raise BadParameter(f"window: {text!r} must be above 0 and at most 31d")
    return seconds


def parse_since(text: str | None) -> float | None:
    """Unix seconds or an ISO 8601 time (with a zone, or UTC)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"since: {text!r} is neither unix seconds nor an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_limit(text: str | None, default: int, most: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(f"limit: {text!r} is not a whole number") from None
    if not 1 <= value <= most:
        raise BadParameter(f"limit: must be between 1 and {most}")
    return value


def event(e: Event) -> dict[str, Any]:
    return {"id": e.id, "at": iso_ts(e.at), "stored_at": iso_ts(e.ts), "fields": e.fields}


def incidents(model: ReadModel, views: list[TargetView], recent: int) -> dict[str, Any]:
    """Open incidents by root cause (from the statuses now), with what the notifier knows of them, and the
    incidents it resolved lately (its delivery log: only with notify.webhooks)."""
    by_name = {v.name: v for v in views}
    tracked = {d.get("root"): d for d in model.notified_incidents()}
    open_ = []
    for incident in model.incidents(views):
        root = by_name[incident.root]
        known = tracked.get(incident.root) or {}
        open_.append({
            "id": known.get("id"), "root_cause": incident.root, "status": incident.status,
            "severity": incident.severity, "kind": root.kind, "dependents": list(incident.dependents),
            "error": root.result.error if root.result else None,
            "first_seen": iso_ts(known.get("first_seen")), "opened_at": iso_ts(known.get("opened_at")),
            "notified": known.get("opened_at") is not None,
        })
    resolved: dict[str, dict[str, Any]] = {}
    for d in model.deliveries(limit=500):
        if d.event == "resolve" and d.incident_id and d.incident_id not in resolved:
            resolved[d.incident_id] = {"id": d.incident_id, "root_cause": d.root, "resolved_at": iso_ts(d.at),
                                       "summary": d.summary}
    return {"open": open_, "recent": list(resolved.values())[:recent]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
