"""Capacity: headroom and trend per backend resource, and what runs out first at the current trend."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import charts, context, urlstate
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.nav import target_url
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
from hulk_ops.dashboard.readmodel.capacity import CapacityReport, Resource, capacity_kinds, capacity_report
from hulk_ops.dashboard.readmodel.series import Buckets, bucketize, linear_fit
from hulk_ops.dashboard.readmodel.trends import LONG_AFTER_S, TTL_S, long_points
from hulk_ops.probes import registry

WINDOWS = {"1 h": 3600, "6 h": 21600, "24 h": 86400, "7 d": 7 * 86400, "30 d": 30 * 86400, "90 d": 90 * 86400}
SOON_S = 7 * 86400
ROWS = 300  # per backend, soonest ETA first: a large fleet's long tail is not read on this page


def render() -> None:
    config = context.config()
    st.title("Capacity")
    window = urlstate.choice(st.segmented_control, "Trend over", list(WINDOWS), "6 h", "capacity_window", "window")

    @st.fragment(run_every=max(config.dashboard.refresh_s, 15.0))
    def live() -> None:
        model = context.read_model()
        try:
            report = capacity_report(model, WINDOWS[window])
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, max(config.dashboard.refresh_s, 15.0))
            return
        ui.page_freshness(fresh, f"trends: least squares since {ui.utc_time(report.trend_start)}, fitted at "
                                 f"{ui.clock(report.trend_at)} (refreshed every {TTL_S:.0f} s)")
        first_out(report)
        backends = {k: registry.display_name(k) for k in capacity_kinds(t.kind for t in config.targets)}
        if not backends:
            st.caption("No configured target has capacity metrics.")
            return
        tabs = st.tabs(list(backends.values()))
        for tab, kind in zip(tabs, backends, strict=True):
            with tab:
                rows = [r for r in report.resources if r.kind == kind]
                if rows:
                    st.dataframe(table(rows), hide_index=True, width="stretch",
                                 column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")})
                    if len(rows) > ROWS:
                        st.caption(f"The {ROWS} resources closest to their limit of {len(rows)}.")
                else:
                    st.caption(f"No {backends[kind]} target reports capacity metrics.")
        chart(model, report)

    live()


def sentence(r: Resource) -> str:
    eta = r.eta_s
    if eta == 0:
        return f"**{r.target}** {r.name} is full ({ui.size(r.used, r.unit)} of {ui.size(r.limit, r.unit)})"
    return (f"**{r.target}** {r.name} full in ~{ui.duration(eta)} at the current trend "
            f"({ui.pct(r.used_pct, 1)} used, +{ui.size(r.slope_per_day, r.unit)}/day)")


def first_out(report: CapacityReport) -> None:
    soon = report.running_out()
    if not soon:
        st.success("Nothing with a limit is growing toward it over this window.", icon=":material/check_circle:")
        return
    top = soon[0]
    (st.error if (top.eta_s or 0) < SOON_S else st.warning)(
        "Runs out first: " + sentence(top), icon=":material/hourglass_bottom:")
    if len(soon) > 1:
        st.markdown("\n".join(f"- {sentence(r)}" for r in soon[1:6]))


def table(rows: list[Resource]) -> pd.DataFrame:
    ordered = sorted(rows, key=lambda r: (r.eta_s if r.eta_s is not None else float("inf"), -(r.used_pct or 0)))
    return pd.DataFrame([{
        "target": r.target, "resource": r.name, "used": ui.size(r.used, r.unit),
        "limit": ui.size(r.limit, r.unit) if r.limit else "-",
        "used %": None if r.used_pct is None else round(r.used_pct, 1),
        "trend /day": None if r.slope_per_day is None else ui.size(r.slope_per_day, r.unit),
        "ETA days": None if r.eta_s is None else round(r.eta_s / 86400, 2),
        "points": r.fit_points, "detail": target_url(r.target),
    } for r in ordered[:ROWS]])


def chart(model: ReadModel, report: CapacityReport) -> None:
    candidates = report.running_out() or [r for r in report.resources if r.metric and r.slope_per_s]
    if not candidates:
        return
    labels = {f"{r.target} · {r.name}": r for r in candidates[:50]}
    chosen = st.selectbox("History and trend of", list(labels), key="capacity_chart_of")
    r = labels[chosen]
    metric = r.metric
    if metric is None:  # a resource has a trend only through its tracked metric
        return
    start = report.trend_start  # the same points the trend was fitted on
    if report.window_s > LONG_AFTER_S:  # one point per summarised hour (days beyond the hours kept)
        ts, means, mins, maxes = long_points(model, [(r.target, metric)], start, report.read_at)[(r.target, metric)]
        buckets = Buckets(ts, {"mean": means, "min": mins, "max": maxes}, 3600, False)
        fit = linear_fit(ts, means)
    else:
        data = model.metric_history(r.target, metric, start, report.read_at)
        buckets = bucketize(data["ts"], data["value"], start, report.read_at)
        fit = linear_fit(data["ts"], data["value"])
    # the line reaches the limit when that is within one more window; else it stops one window ahead
    until = report.read_at + min(r.eta_s, report.window_s) if r.eta_s else None
    st.plotly_chart(charts.trend(buckets, fit, r.limit, f"{r.target} · {r.name}", r.unit, until),
                    key="capacity_chart")
