"""Actions: dry-run, then a dialog with the preview (cost, blast radius) where the person types the
name of the object to confirm; production requests wait for an admin's approval, listed here.

The page offers only what the signed-in person may do; the guard decides again on every submit.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import streamlit as st

from hulk_ops.actions.audit import AuditUnavailable
from hulk_ops.actions.model import ActionResult, BadRequest, Principal, parse_request
from hulk_ops.dashboard import action_forms as forms
from hulk_ops.dashboard import auth, context
from hulk_ops.dashboard.guarded import guard, run

PENDING = "action_pending"  # the dry-run shown in the dialog: {"request", "dry", "key"}
RESULT = "action_result"


def render() -> None:
    config = context.config()
    st.title("Actions")
    who = auth.principal()
    if who is None:
        st.warning("Actions need signed-in users: add `auth:` (local users or OIDC) to the config.", icon="🔒")
        return
    if not config.audit.url:
        st.warning("No audit database is configured (`audit: {url: postgresql://...}`): every action would be "
                   "refused, so none is offered.", icon="🔒")
        return
    last = st.session_state.pop(RESULT, None)
    if last is not None:
        forms.show_result(last)
    approvals(who)
    if who.role in (None, "viewer"):
        st.info("You are signed in as a viewer: you see everything, and no action is offered.", icon="👁️")
        return
    gate = guard()  # a cached resource: looked up once, not once per target (2,000 lookups: ~80 ms)
    offered = {t.name: gate.offered(who, t) for t in config.targets}
    tabs = [(label, action) for label, action in (("Purge a NATS stream", "purge_stream"),
                                                  ("Scale or restart a deployment", "scale"),
                                                  ("Launch a GPU pod", "launch_gpu"),
                                                  ("Endpoint workers", "endpoint_workers"),
                                                  ("Stop or terminate a pod", "stop_pod"))
            if forms.targets_for(action, offered)]
    if not tabs:
        st.info("No target you may act on (read-only targets and kinds without actions are not listed).")
        return
    for tab, (_label, action) in zip(st.tabs([label for label, _ in tabs]), tabs, strict=True):
        with tab:
            choices = forms.targets_for(action, offered)
            if action == "purge_stream":
                data = forms.purge_form(choices)
            elif action == "scale":
                data = forms.scale_form(choices, offered)
            elif action == "launch_gpu":
                data = forms.launch_form(choices)
            elif action == "endpoint_workers":
                data = forms.workers_form(choices)
            else:
                data = forms.pod_form(choices, offered)
            if data is not None:
                dry_run(who, data)
    if st.session_state.get(PENDING):
        confirm()  # open until confirmed, cancelled or dismissed (also across full reruns)


def dry_run(who: Principal, data: dict) -> None:
    try:
        request = parse_request({k: v for k, v in data.items() if v is not None})
        result = run(guard().dry_run(who, request))
    except BadRequest as exc:
        st.error(f"**Bad input.** {exc}", icon="✏️")
        return
    if result.status != "dry_run":
        forms.show_result(result)
        return
    st.session_state[PENDING] = {"request": request, "dry": result, "key": f"ui-{uuid.uuid4().hex}"}
    st.session_state.pop("confirm_text", None)


def _dismissed() -> None:
    st.session_state.pop(PENDING, None)


@st.dialog("Confirm action", width="large", on_dismiss=_dismissed)
def confirm() -> None:
    state = st.session_state.get(PENDING)
    who = auth.principal()
    if not state or who is None:
        st.write("Nothing to confirm.")
        return
    request, dry = state["request"], state["dry"]
    st.caption(f"Dry-run of {forms.VERB[request.action].lower()} on target {request.target}")
    forms.show_preview(dry)
    typed = st.text_input(f"Type **{request.object_name}** to confirm", key="confirm_text")
    cols = st.columns([1, 1, 3])
    go = cols[0].button(forms.VERB[request.action], type="primary", key="confirm_go",
                        disabled=typed.strip() != request.object_name)
    if cols[1].button("Cancel", key="confirm_cancel"):
        st.session_state.pop(PENDING, None)
        st.rerun()
    if go:
        with st.spinner("Executing…"):
            result = run(guard().submit(who, request, confirm=typed.strip(), idempotency_key=state["key"]))
        st.session_state[RESULT] = result
        st.session_state.pop(PENDING, None)
        st.rerun()


def approvals(who: Principal) -> None:
    try:
        waiting = run(guard().pending())
    except AuditUnavailable as exc:
        st.error(f"**Audit store unreachable.** {exc} — no action can run until it is back.", icon="🚨")
        return
    mine = [p for p in waiting if who.role == "admin" or p.record.username == who.name]
    if not mine:
        return
    st.subheader(f"Waiting for approval ({len(mine)})")
    for item in mine:
        r = item.record
        with st.container(border=True):
            state = "**expired**" if item.expired else f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC"
            st.markdown(f"**{forms.VERB.get(r.action, r.action)}** `{r.object}` on **{r.target}** · asked by "
                        f"{r.username} · {state}")
            if r.dry_run:
                st.caption(r.dry_run.get("summary", ""))
                for line in r.dry_run.get("blast_radius", []):
                    st.caption(f"• {line}")
            if not forms.may_approve(who, r.username) or item.expired:
                if who.role == "admin" and r.username == who.name:
                    st.caption("Your own request: another admin approves it (four-eyes).")
                continue
            cols = st.columns(6)
            if cols[0].button("Approve", key=f"approve_{r.request_id}", type="primary"):
                decide(functools.partial(guard().approve, who, r.request_id))
            if cols[1].button("Reject", key=f"reject_{r.request_id}"):
                decide(functools.partial(guard().reject, who, r.request_id, "rejected in the dashboard"))


def decide(call: Callable[[], Coroutine[Any, Any, ActionResult]]) -> None:
    try:
        st.session_state[RESULT] = run(call())
    except AuditUnavailable as exc:
        st.error(f"**Audit store unreachable.** {exc} — nothing was executed.", icon="🚨")
        return
    st.rerun()
