"""Audit: every request's rows (dry-run, refusal, approval, start, outcome), filtered, with CSV export."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
import streamlit as st

from hulk_ops.actions.audit import AuditFilter, AuditRecord, AuditUnavailable
from hulk_ops.actions.model import REQUEST_TYPES
from hulk_ops.dashboard import context
from hulk_ops.dashboard.guarded import guard, run

OUTCOMES = ["dry_run", "refused", "pending_approval", "approved", "rejected", "started", "succeeded", "failed",
            "replayed"]
WINDOWS = {"last hour": timedelta(hours=1), "last 24 h": timedelta(days=1), "last 7 days": timedelta(days=7),
           "last 30 days": timedelta(days=30), "all": None}
ANY = "(any)"


def render() -> None:
    config = context.config()
    st.title("Audit log")
    if not config.audit.url:
        st.warning("No audit database is configured (`audit: {url: postgresql://...}`).", icon="🔒")
        return
    cols = st.columns(6)
    user = cols[0].text_input("User", key="audit_user")
    action = cols[1].selectbox("Action", [ANY, *REQUEST_TYPES], key="audit_action")
    target = cols[2].selectbox("Target", [ANY, *(t.name for t in config.targets)], key="audit_target")
    outcome = cols[3].selectbox("Outcome", [ANY, *OUTCOMES], key="audit_outcome")
    window = cols[4].selectbox("Time", list(WINDOWS), index=1, key="audit_window")
    limit = cols[5].number_input("Rows", min_value=10, max_value=10_000, value=500, step=100, key="audit_limit")
    span = WINDOWS[window]
    since = datetime.now(UTC) - span if span else None
    flt = AuditFilter(username=user.strip() or None, action=None if action == ANY else action,
                      target=None if target == ANY else target, outcome=None if outcome == ANY else outcome,
                      since=since, limit=int(limit))
    try:
        records = run(guard().history(flt))
    except AuditUnavailable as exc:
        st.error(f"**Audit store unreachable.** {exc}", icon="🚨")
        return
    st.caption(f"Read from the audit database at {time.strftime('%H:%M:%S')} · {len(records)} row(s), newest first")
    if not records:
        st.info("No audit rows match these filters.")
        return
    frame = table(records)
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Export CSV", frame.to_csv(index=False).encode(), file_name="hulk-ops-audit.csv",
                       mime="text/csv", key="audit_csv")


def table(records: list[AuditRecord]) -> pd.DataFrame:
    return pd.DataFrame([{
        "id": r.id,
        "time (UTC)": r.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if r.at else "",
        "user": r.username,
        "action": r.action,
        "target": r.target,
        "object": r.object,
        "outcome": r.outcome,
        "approver": r.approver or "",
        "summary": (r.dry_run or {}).get("summary", ""),
        "error": r.error or "",
        "roles": ",".join(r.roles),
        "via": r.via,
        "idempotency key": r.idempotency_key or "",
        "request": r.request_id,
        "params": orjson.dumps(r.params).decode(),
        "before": orjson.dumps(r.before).decode() if r.before is not None else "",
        "after": orjson.dumps(r.after).decode() if r.after is not None else "",
    } for r in records])
