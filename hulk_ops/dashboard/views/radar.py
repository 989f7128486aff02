"""Technology radar: the components we run (radar.yaml) by quadrant and ring, the versions the probes see
live, and drift from the pinned version (see hulk_ops/dashboard/readmodel/radar.py for the exact rule)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import charts, context
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.readmodel import StoreUnavailable
from hulk_ops.dashboard.readmodel.radar import RadarEntry, RadarError, load_radar, radar_entries, radar_path

DRIFT_LABEL = {"major": "MAJOR drift", "minor": "minor drift", "none": "as pinned", "unknown": "unknown"}


def render() -> None:
    config = context.config()
    st.title("Technology radar")
    path = radar_path(config)
    try:
        radar = load_radar(path)
    except RadarError as exc:
        st.error(f"**The radar file cannot be used.** {exc}", icon=":material/error:")
        return

    @st.fragment(run_every=max(config.dashboard.refresh_s, 30.0))
    def live() -> None:
        model = context.read_model()
        try:
            views = model.target_views()
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, max(config.dashboard.refresh_s, 30.0))
            return
        ui.page_freshness(fresh, f"radar: {path.name}")
        entries = radar_entries(radar, views)
        drifting = [e for e in entries if e.drift in ("major", "minor")]
        cols = st.columns(3)
        cols[0].metric("Components", len(entries))
        cols[1].metric("Seen live", sum(1 for e in entries if e.live))
        cols[2].metric("Drifting from pinned", len(drifting))
        for entry in drifting:
            detail = ", ".join(f"{v} ({d}: {', '.join(entry.live[v][:5])})" for v, d in entry.drifting().items())
            st.warning(f"**{entry.component.name}** pinned {entry.component.pinned}, live {detail}",
                       icon=":material/difference:")
        st.plotly_chart(charts.radar(entries), key="radar_chart")
        st.dataframe(table(entries), hide_index=True, width="stretch")

    live()


def table(entries: list[RadarEntry]) -> pd.DataFrame:
    rows = []
    for e in entries:
        c = e.component
        live = "; ".join(f"{v or 'no version'} ({len(t)}: {', '.join(t[:3])}{'…' if len(t) > 3 else ''})"
                         for v, t in sorted(e.live.items()))
        rows.append({"component": c.name, "quadrant": c.quadrant, "ring": c.ring, "pinned": c.pinned or "-",
                     "live versions": live or "not seen", "drift": DRIFT_LABEL[e.drift], "notes": c.notes})
    return pd.DataFrame(rows)
