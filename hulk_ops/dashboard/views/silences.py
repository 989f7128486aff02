"""Silences: maintenance windows in force, planned and past; operators add or end them here.

Everyone sees every silence. Only a signed-in operator or admin gets the form, and the write
adapter (`hulk_ops/dashboard/silence_writer.py`) checks the role again on the write itself.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from hulk_ops.core.silences import Silence, may_silence
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard import context, operator
from hulk_ops.dashboard.readmodel import StoreUnavailable
from hulk_ops.dashboard.silence_writer import NotAllowed, Operator, SilenceWriter

FLASH = "silence_flash"


def render() -> None:
    st.title("Silences")
    st.caption("A silenced target keeps showing its true state; only notifications wait until the window ends "
               "(then an open or resolve still relevant is sent).")
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash, icon=":material/check_circle:")
    model = context.read_model()
    try:
        silences = model.silences()
    except StoreUnavailable as exc:
        ui.store_error(exc)
        return
    now = time.time()
    st.dataframe(table(silences, now), hide_index=True, width="stretch") if silences else st.caption("No silences.")
    who = operator.current()
    if who is None or not may_silence(who.role):
        st.info("Adding or ending silences needs a signed-in operator or admin.", icon=":material/lock:")
        return
    writer = SilenceWriter(context.config(), model.redis)
    add_form(writer, who)
    end_form(writer, who, [s for s in silences if s.source == "dashboard" and s.end > now])


def table(silences: list[Silence], now: float) -> pd.DataFrame:
    def state(s: Silence) -> str:
        return "in force" if s.active(now) else ("planned" if s.start > now else "ended")

    return pd.DataFrame([{
        "state": state(s), "scope": s.scope(), "from": clock(s.start), "until": clock(s.end), "author": s.author,
        "reason": s.reason, "source": s.source, "id": s.id,
    } for s in sorted(silences, key=lambda s: (state(s) == "ended", s.start))])


def add_form(writer: SilenceWriter, who: Operator) -> None:
    config = context.config()
    st.subheader("Add a silence")
    with st.form("add_silence", clear_on_submit=False):
        targets = st.multiselect("Targets", [t.name for t in config.targets], key="silence_targets")
        selector = st.text_input("or labels (all must match)", placeholder="env=staging, team=payments",
                                 key="silence_selector")
        starts_in = st.number_input("Starts in (minutes)", min_value=0, max_value=7 * 24 * 60, value=0,
                                    key="silence_starts_in")
        lasts = st.number_input("Lasts (minutes)", min_value=1, max_value=31 * 24 * 60, value=60,
                                key="silence_lasts")
        reason = st.text_area("Reason", key="silence_reason", placeholder="what is being done, and a ticket")
        submitted = st.form_submit_button("Silence", type="primary")
    if not submitted:
        return
    try:
        labels = parse_selector(selector)
        start = time.time() + float(starts_in) * 60
        silence = writer.add(who, list(targets), labels, start, start + float(lasts) * 60, reason)
    except (NotAllowed, ValueError) as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.session_state[FLASH] = f"Silenced {silence.scope()} until {clock(silence.end)}."
    st.rerun()


def end_form(writer: SilenceWriter, who: Operator, mine: list[Silence]) -> None:
    if not mine:
        return
    st.subheader("End a silence now")
    labels = {s.id: f"{s.scope()} until {clock(s.end)} — {s.reason}" for s in mine}
    chosen = st.selectbox("Silence", list(labels), format_func=labels.__getitem__, key="silence_end_choice")
    if st.button("End now", key="silence_end"):
        try:
            writer.end_now(who, chosen)
        except (NotAllowed, ValueError) as exc:
            st.error(str(exc), icon=":material/error:")
            return
        st.session_state[FLASH] = f"Ended {labels[chosen]}."
        st.rerun()


def parse_selector(text: str) -> dict[str, str]:
    """'env=staging, team=db' -> {'env': 'staging', 'team': 'db'}"""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"label selector: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
