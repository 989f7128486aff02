"""Incidents: the open incidents by probable root cause (opening on the first, with what changed in the
30 minutes before it started), then one timeline of every source with filters."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from hulk_ops.core.config import Config
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard import context, nav, suggested, urlstate
from hulk_ops.dashboard.readmodel import StoreUnavailable
from hulk_ops.dashboard.readmodel.rootcause import BEFORE_S, OpenIncident, open_incidents
from hulk_ops.dashboard.readmodel.series import WINDOWS_S
from hulk_ops.dashboard.readmodel.timeline import SEVERITIES, Filters, TimelineEntry, timeline

SEVERITY_ICON = {"critical": "■ critical", "warning": "▲ warning", "info": "· info"}
SOURCES = ("probe", "prometheus", "kubernetes", "runpod", "action")
LINKS = {"detail": st.column_config.LinkColumn("detail", display_text="open")}
SELECTED = "incidents_selected_root"  # the open incident shown expanded (its root's fixes are suggested)
SHOWN = 25  # incidents opened as sections; a flood of them continues in a table


def render() -> None:
    config = context.config()
    st.title("Incidents")

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live() -> None:
        model = context.read_model()
        try:
            views = model.target_views()
            wanted = st.query_params.get("incident")
            grouped = model.incidents(views)
            roots = [i.root for i in grouped]
            selected = wanted if wanted in roots else (roots[0] if roots else None)
            st.session_state[SELECTED] = selected
            incidents = open_incidents(model, views, context_for=selected, grouped=grouped, limit=SHOWN)
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)
            return
        ui.page_freshness(fresh)
        open_section(incidents, selected, len(grouped))
        shown = {i.incident.root for i in incidents}
        rest = [i for i in grouped if i.root not in shown]
        if rest:
            st.caption(f"{len(rest)} more open incidents:")
            st.dataframe(pd.DataFrame([{
                "severity": i.severity, "root cause": i.root, "status": i.status, "dependents": len(i.dependents),
                "open": nav.incident_url(i.root)} for i in rest]), hide_index=True, width="stretch",
                column_config={"open": st.column_config.LinkColumn("open", display_text="open")})

    live()
    suggested.section(st.session_state.get(SELECTED), "incident")  # outside the fragment: it opens a dialog
    timeline_section(config)


def open_section(incidents: list[OpenIncident], selected: str | None, total: int) -> None:
    if not incidents:
        st.success("No open incident: nothing is down or degraded.", icon=":material/check_circle:")
        return
    st.subheader(f"Open incidents ({total})")
    for item in incidents:
        inc = item.incident
        label = (f"{inc.severity.upper()} · probable root cause **{inc.root}** ({item.root.status}) · "
                 f"{len(inc.dependents)} dependent(s) · since {ui.utc_time(item.started_at)}")
        with st.expander(label, expanded=inc.root == selected, icon=":material/crisis_alert:"):
            if inc.root == selected:
                incident_body(item)
            else:
                nav.link_incident(inc.root, "open this incident")


def incident_body(item: OpenIncident) -> None:
    inc, root = item.incident, item.root
    st.markdown(f"Probable root cause: {ui.badge(root.status)} **{inc.root}** ({root.kind})")
    if root.result and root.result.error:
        st.caption(f":{ui.COLOUR[root.status]}[{root.result.error[:300]}]")
    nav.link_target(inc.root, f"{inc.root}: target detail")
    if item.dependents:
        st.markdown(f"**Failing because of it ({len(item.dependents)})**")
        st.dataframe(pd.DataFrame([{
            "target": d.name, "kind": d.kind, "status": d.status,
            "error": (d.result.error or "") if d.result else "", "detail": nav.target_url(d.name),
        } for d in item.dependents]), hide_index=True, width="stretch",
            column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")})
    st.markdown(f"**What changed in the {BEFORE_S / 60:.0f} minutes before it started** "
                f"({ui.utc_time(item.started_at)})")
    if item.before:
        st.dataframe(entries_frame(item.before), hide_index=True, width="stretch", column_config=LINKS)
    else:
        st.caption("Nothing recorded in that half hour.")
    if item.during:
        st.markdown("**Since it started** (its own targets)")
        st.dataframe(entries_frame(item.during), hide_index=True, width="stretch", column_config=LINKS)


def entries_frame(entries: list[TimelineEntry]) -> pd.DataFrame:
    return pd.DataFrame([{
        "time": ui.utc_time(e.ts), "severity": SEVERITY_ICON.get(e.severity, e.severity), "source": e.source,
        "target": e.target, "kind": e.kind, "what": e.title, "detail": nav.target_url(e.target) if e.target else None,
        "more": e.detail,
    } for e in entries], columns=["time", "severity", "source", "target", "kind", "what", "detail", "more"])


def timeline_section(config: Config) -> None:
    st.subheader("Timeline")
    names = [t.name for t in config.targets]
    kinds = sorted({t.kind for t in config.targets})
    cols = st.columns([1, 2, 2, 2, 2])
    window = urlstate.choice(cols[0].selectbox, "Window", list(WINDOWS_S), list(WINDOWS_S)[2], "timeline_window",
                             "window")
    targets = cols[1].multiselect("Targets", names, key="timeline_targets")
    chosen_kinds = cols[2].multiselect("Kinds", kinds, key="timeline_kinds")
    severities = cols[3].multiselect("Severity", SEVERITIES, key="timeline_severity")
    sources = cols[4].multiselect("Source", SOURCES, key="timeline_sources")
    filters = Filters(tuple(targets), tuple(chosen_kinds), tuple(severities), tuple(sources))

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live_timeline() -> None:
        model = context.read_model()
        now = time.time()
        try:
            entries = timeline(model, now - WINDOWS_S[window], now, filters)
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)
            return
        st.caption(f"{len(entries)} entries, newest first · read at {ui.clock(now)}")
        st.dataframe(entries_frame(entries[:2000]), hide_index=True, width="stretch", height=480,
                     column_config=LINKS, key="timeline_table")

    live_timeline()
