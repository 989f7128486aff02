"""Notification bodies: generic JSON, Slack-compatible and Alertmanager-compatible.

- `generic`: `{"version": 1, "event", "incident": {...}, "targets": {name: {status, kind, error}}, ...}`.
- `slack`: an incoming-webhook message (`text` plus `blocks` in mrkdwn).
- `alertmanager`: what Alertmanager's `POST /api/v2/alerts` takes, a JSON array of postable alerts
  (labels, annotations, `startsAt`, `endsAt`, `generatorURL`). One alert per incident and severity,
  identified by its labels (alertname, target, root_cause, kind, severity, incident_id); a resolve
  posts it again with `endsAt` set to the time of recovery.

A body is built when the message is queued and stored as is in the outbox, so a retried message
is byte-for-byte the one first tried. Errors are the probes' own (already redacted of secrets).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hulk_ops.collectors.notify.tracker import Notice
from hulk_ops.core.burn import BurnNotice
from hulk_ops.core.incidents import SEVERITY

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
           dashboard_url: str | None = None, runbook_url: str | None = None, hold_s: float = 240.0) -> Any:
    """`targets`: name -> {status, kind, error} of the incident's members at the time."""
    if fmt == "slack":
        return slack(notice, targets, dashboard_url)
    if fmt == "alertmanager":
        return alertmanager(notice, targets, dashboard_url, runbook_url, hold_s)
    return generic(notice, targets, message_id, dashboard_url, runbook_url)


def generic(notice: Notice, targets: dict[str, dict[str, Any]], message_id: str,
            dashboard_url: str | None, runbook_url: str | None = None) -> dict[str, Any]:
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
        "runbook_url": runbook_url,
    }


def slack(notice: Notice, targets: dict[str, dict[str, Any]], dashboard_url: str | None) -> dict[str, Any]:
    lines = []
    for name in (notice.root, *notice.dependents):
        info = targets.get(name, {})
        error = f" — {info['error']}" if info.get("error") else ""
        lines.append(f"• *{name}* ({info.get('kind', '?')}): {info.get('status', '?')}{error}")
    text = f"{ICON.get(notice.event, ICON['open'])} {summary(notice)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"incident `{notice.incident_id}` · opened "
                                          f"{ts_iso(notice.opened_at)}"}]},
    ]
    if dashboard_url:
        blocks[-1]["elements"].append({"type": "mrkdwn", "text": f"<{dashboard_url}|dashboard>"})
    return {"text": text, "blocks": blocks}


def alertmanager(notice: Notice, targets: dict[str, dict[str, Any]], dashboard_url: str | None,
                 runbook_url: str | None = None, hold_s: float = 240.0) -> list[dict[str, Any]]:
    """Postable alerts for Alertmanager's `POST /api/v2/alerts`: the incident's alert, plus the alert of the
    severity sent before when it changed (its labels differ, so it is ended).

    A firing alert ends `hold_s` after `at` unless posted again (`Notifier` re-posts it while the incident is
    open), so an installation that stops talking to Alertmanager does not leave alerts firing forever.
    """
    root = targets.get(notice.root, {})
    ends_now = ts_iso(notice.at)
    annotations = {"summary": summary(notice), "description": _description(notice, root),
                   "dependents": ", ".join(notice.dependents)}
    if dashboard_url:
        annotations["dashboard"] = dashboard_url
    if runbook_url:
        annotations["runbook_url"] = runbook_url
    if notice.merged_into:
        annotations["merged_into"] = ", ".join(notice.merged_into)
    def alert(status: str | None, ends_at: str) -> dict[str, Any]:
        labels = {"alertname": "HulkOpsIncident", "target": notice.root, "root_cause": notice.root,
                  "kind": str(root.get("kind") or ""), "severity": SEVERITY.get(status or "", "warning"),
                  "incident_id": notice.incident_id}
        return {"labels": labels, "annotations": annotations, "startsAt": ts_iso(notice.opened_at),
                "endsAt": ends_at, "generatorURL": dashboard_url or ""}

    if notice.closes:
        return [alert(notice.previous_status or notice.status, ends_now)]
    alerts = [alert(notice.status, ts_iso(notice.at + hold_s))]
    previous = notice.previous_status
    if previous and SEVERITY.get(previous) != SEVERITY.get(notice.status):
        alerts.append(alert(previous, ends_now))
    return alerts


def _description(notice: Notice, root: dict[str, Any]) -> str:
    error = root.get("error")
    if notice.event == "resolve":
        return f"{notice.root} recovered ({notice.status})"
    return f"{notice.root} ({root.get('kind') or '?'}) is {notice.status}" + (f": {error}" if error else "")


def burn_summary(notice: BurnNotice) -> str:
    what = "PAGE" if notice.severity == "page" else "TICKET"
    names = ", ".join(notice.targets)
    if notice.event == "burn_resolve":
        return f"RESOLVED: error budget no longer burning fast ({notice.severity}) for {names}"
    cause = f" (root cause: {notice.root})" if notice.root not in notice.targets[:1] else ""
    rates = "; ".join(f"{t} {r[0]:g}x" for t, r in notice.rates.items())
    return f"{what}: error budget burning for {names}{cause}: {rates}"


BURN_HOLD_S = 6 * 3600.0  # a firing burn alert not resolved by then ends in Alertmanager (its longest window)


def render_burn(notice: BurnNotice, fmt: str, targets: dict[str, dict[str, Any]], message_id: str,
                dashboard_url: str | None = None, runbook_url: str | None = None) -> Any:
    """A burn alert in the webhook's format (the same shapes as incidents)."""
    text = burn_summary(notice)
    resolved = notice.event == "burn_resolve"
    if fmt == "slack":
        icon = ":white_check_mark:" if resolved else (":fire:" if notice.severity == "page" else ":hourglass:")
        return {"text": f"{icon} {text}", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{icon} {text}*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert `{notice.alert_id}` · opened "
                                              f"{ts_iso(notice.opened_at)}"}]}]}
    if fmt == "alertmanager":
        labels = {"alertname": "HulkOpsErrorBudgetBurn", "severity": notice.severity, "root_cause": notice.root,
                  "alert_id": notice.alert_id}
        annotations = {"summary": text, "targets": ", ".join(notice.targets)}
        if dashboard_url:
            annotations["dashboard"] = dashboard_url
        if runbook_url:
            annotations["runbook_url"] = runbook_url
        ends = notice.at if resolved else notice.at + BURN_HOLD_S
        return [{"labels": labels, "annotations": annotations, "startsAt": ts_iso(notice.opened_at),
                 "endsAt": ts_iso(ends), "generatorURL": dashboard_url or ""}]
    return {
        "version": 1, "message_id": message_id, "event": notice.event, "summary": text,
        "burn": {"id": notice.alert_id, "severity": notice.severity, "root": notice.root,
                 "targets": list(notice.targets),
                 "burn_rates": {t: {"long": r[0], "short": r[1]} for t, r in notice.rates.items()},
                 "opened_at": ts_iso(notice.opened_at), "resolved_at": ts_iso(notice.at) if resolved else None},
        "targets": targets, "at": ts_iso(notice.at), "dashboard_url": dashboard_url,
    }
