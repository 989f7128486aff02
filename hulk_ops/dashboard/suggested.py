"""The "Suggested fixes" section (Incidents and Target detail): the guarded actions that fit what a
target's latest probe result shows (hulk_ops/core/suggestions.py), each opening the Actions page's
dry-run dialog pre-filled. The guard decides as always; a person who may not act sees them disabled
with the reason.
"""

from __future__ import annotations

import streamlit as st

from hulk_ops.core.model import ProbeResult
from hulk_ops.core.suggestions import Suggestion, suggest
from hulk_ops.dashboard import action_forms as forms
from hulk_ops.dashboard import auth, context
from hulk_ops.dashboard.guarded import guard
from hulk_ops.dashboard.views import actions


def for_target(name: str, result: ProbeResult | None = None) -> list[Suggestion]:
    """The suggestions for a target's latest result (`result`, else read from the store)."""
    config = context.config()
    target = next((t for t in config.targets if t.name == name), None)
    if target is None:
        return []
    if result is None:
        try:
            result = context.read_model().latest([name]).get(name)
        except Exception:  # the store being down is reported by the page itself; no suggestion without a result
            return []
    return suggest(target.kind, name, result, config.rule_set(target), config.actions)


def section(name: str | None, where: str, result: ProbeResult | None = None) -> None:
    """Render the section for target `name` (nothing when no rule fits); `where` keeps widget keys apart."""
    last = st.session_state.pop(actions.RESULT, None)
    if last is not None:
        forms.show_result(last)
    found = for_target(name, result) if name else []
    if found:
        st.subheader("Suggested fixes")
        who = auth.principal()
        config = context.config()
        target = next(t for t in config.targets if t.name == name)
        offered = guard().offered(who, target) if who is not None else []
        for i, item in enumerate(found):
            why_not = item.blocked
            if who is None:
                why_not = "sign in to act"
            elif who.role in (None, "viewer"):
                why_not = why_not or f"{who.name} is a viewer: viewers cannot act"
            elif item.action not in offered:
                why_not = why_not or f"{forms.VERB.get(item.action, item.action)} is not allowed on {name} for you"
            elif not config.audit.url:
                why_not = why_not or "no audit database is configured: every action would be refused"
            cols = st.columns([2, 3])
            clicked = cols[0].button(item.title, key=f"suggest_{where}_{i}_{item.action}", disabled=why_not is not None,
                                     help=why_not, icon=":material/build:", width="stretch")
            cols[1].caption(item.reason + (f" · *{why_not}*" if why_not else ""))
            if clicked and who is not None:
                actions.dry_run(who, item.request)
    if st.session_state.get(actions.PENDING):
        actions.confirm()
