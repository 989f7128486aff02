"""Notification bodies: generic JSON, Slack-compatible and Alertmanager-compatible.

- `generic`: `{"version": 1, "event", "incident": {...}, "targets": {name: {status, kind, error}}, ...}`.
- `slack`: an incoming-webhook message (`text` plus `blocks` in mrkdwn).
- `alertmanager`: Alertmanager's webhook format (version 4: `status`, `alerts[]` with labels,
  annotations, `startsAt`/`endsAt`, `groupKey`, `commonLabels`), what tools that take
  Alertmanager's notifications accept. One alert per incident, fingerprinted by incident id.

A body is built when the message is queued and stored as is in the outbox, so a retried message
is byte-for-byte the one first tried. Errors are the probes' own (already redacted of secrets).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from hulk_ops.collectors.notify.tracker import Notice
from hulk_ops.core.burn import BurnNotice

ICON = {"open": ":rotating_light:", "update": ":arrows_counterclockwise:", "resolve": ":white_check_mark:"}


def ts_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(notice: Notice) -> str:
    count = len(notice.dependents)
    also = f" (+{count} dependent{'s' if count != 1 else ''}: {', '.join(notice.dependents)})" if count else ""
    if notice.event == "resolve":
        return f"RESOLVED: {notice.root} is {notice.status} again{also}"
    if notice.merged_into:
        return f"MERGED: {notice.root} is now explained by {', '.join(notice.merged_into)}"
    verb = "UPDATE" if notice.event == "update" else notice.status.upper()
    return f"{verb}: {notice.root} is {notice.status}{also}"


def render(notice: Notice, fmt: str, targets: dict[str, dict[str, Any]], message_id: str,
           dashboard_url: str | None = None) -> dict[str, Any]:
    """`targets`: name -> {status, kind, error} of the incident's members at the time."""
    if fmt == "slack":
        return slack(notice, targets, dashboard_url)
    if fmt == "alertmanager":
        return alertmanager(notice, targets, dashboard_url)
    return generic(notice, targets, message_id, dashboard_url)


def generic(notice: Notice, targets: dict[str, dict[str, Any]], message_id: str,
            dashboard_url: str | None) -> dict[str, Any]:
    return {
        "version": 1,
        "message_id": message_id,
        "event": notice.event,
        "summary": summary(notice),
        "incident": {
            "id": notice.incident_id,
            "root": notice.root,
            "status": notice.status,
            "severity": notice.severity,
            "dependents": list(notice.dependents),
            "opened_at": ts_iso(notice.opened_at),
            "resolved_at": ts_iso(notice.at) if notice.event == "resolve" else None,
            "merged_into": list(notice.merged_into),
        },
        "targets": targets,
        "at": ts_iso(notice.at),
        "dashboard_url": dashboard_url,
    }


def slack(notice: Notice, targets: dict[str, dict[str, Any]], dashboard_url: str | None) -> dict[str, Any]:
    lines = []
    for name in (notice.root, *notice.dependents):
        info = targets.get(name, {})
        error = f" — {info['error']}" if info.get("error") else ""
        lines.append(f"• *{name}* ({info.get('kind', '?')}): {info.get('status', '?')}{error}")
    text = f"{ICON[notice.event]} {summary(notice)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"incident `{notice.incident_id}` · opened "
                                          f"{ts_iso(notice.opened_at)}"}]},
    ]
    if dashboard_url:
        blocks[-1]["elements"].append({"type": "mrkdwn", "text": f"<{dashboard_url}|dashboard>"})
    return {"text": text, "blocks": blocks}


def alertmanager(notice: Notice, targets: dict[str, dict[str, Any]], dashboard_url: str | None) -> dict[str, Any]:
    status = "resolved" if notice.event == "resolve" else "firing"
    root = targets.get(notice.root, {})
    labels = {"alertname": "HulkOpsIncident", "target": notice.root, "kind": str(root.get("kind", "")),
              "severity": "info" if notice.event == "resolve" else notice.severity,
              "incident_id": notice.incident_id}
    annotations = {"summary": summary(notice), "description": str(root.get("error") or ""),
                   "dependents": ", ".join(notice.dependents), "event": notice.event}
    if notice.merged_into:
        annotations["merged_into"] = ", ".join(notice.merged_into)
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": ts_iso(notice.opened_at),
        "endsAt": ts_iso(notice.at) if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": dashboard_url or "",
        "fingerprint": hashlib.sha256(notice.incident_id.encode()).hexdigest()[:16],
    }
    group_labels = {"alertname": "HulkOpsIncident", "target": notice.root}
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname=\"HulkOpsIncident\", target=\"{notice.root}\"}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "hulk-ops",
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": dashboard_url or "",
        "alerts": [alert],
    }


def burn_summary(notice: BurnNotice) -> str:
    what = "PAGE" if notice.severity == "page" else "TICKET"
    names = ", ".join(notice.targets)
    if notice.event == "burn_resolve":
        return f"RESOLVED: error budget no longer burning fast ({notice.severity}) for {names}"
    cause = f" (root cause: {notice.root})" if notice.root not in notice.targets[:1] else ""
    rates = "; ".join(f"{t} {r[0]:g}x" for t, r in notice.rates.items())
    return f"{what}: error budget burning for {names}{cause}: {rates}"


def render_burn(notice: BurnNotice, fmt: str, targets: dict[str, dict[str, Any]], message_id: str,
                dashboard_url: str | None = None) -> dict[str, Any]:
    """A burn alert in the webhook's format (same envelopes as incidents)."""
    text = burn_summary(notice)
    resolved = notice.event == "burn_resolve"
    if fmt == "slack":
        icon = ":white_check_mark:" if resolved else (":fire:" if notice.severity == "page" else ":hourglass:")
        return {"text": f"{icon} {text}", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{icon} {text}*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert `{notice.alert_id}` · opened "
                                              f"{ts_iso(notice.opened_at)}"}]}]}
    if fmt == "alertmanager":
        labels = {"alertname": "HulkOpsErrorBudgetBurn", "severity": notice.severity, "root": notice.root,
                  "alert_id": notice.alert_id}
        annotations = {"summary": text, "targets": ", ".join(notice.targets), "event": notice.event}
        alert = {"status": "resolved" if resolved else "firing", "labels": labels, "annotations": annotations,
                 "startsAt": ts_iso(notice.opened_at),
                 "endsAt": ts_iso(notice.at) if resolved else "0001-01-01T00:00:00Z",
                 "generatorURL": dashboard_url or "",
                 "fingerprint": hashlib.sha256(notice.alert_id.encode()).hexdigest()[:16]}
        return {"version": "4", "groupKey": f"{{}}:{{alertname=\"HulkOpsErrorBudgetBurn\", root=\"{notice.root}\"}}",
                "truncatedAlerts": 0, "status": alert["status"], "receiver": "hulk-ops",
                "groupLabels": {"alertname": "HulkOpsErrorBudgetBurn", "root": notice.root}, "commonLabels": labels,
                "commonAnnotations": annotations, "externalURL": dashboard_url or "", "alerts": [alert]}
    return {
        "version": 1, "message_id": message_id, "event": notice.event, "summary": text,
        "burn": {"id": notice.alert_id, "severity": notice.severity, "root": notice.root,
                 "targets": list(notice.targets),
                 "burn_rates": {t: {"long": r[0], "short": r[1]} for t, r in notice.rates.items()},
                 "opened_at": ts_iso(notice.opened_at), "resolved_at": ts_iso(notice.at) if resolved else None},
        "targets": targets, "at": ts_iso(notice.at), "dashboard_url": dashboard_url,
    }
