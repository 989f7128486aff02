"""Target detail (`?target=<name>`): every metric of one target, its history, its events, its incident."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hulk_ops.core.config import redact_url
from hulk_ops.dashboard import charts, context, nav, suggested, urlstate
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
from hulk_ops.dashboard.readmodel.series import WINDOWS_S
from hulk_ops.dashboard.readmodel.target import TargetDetail, target_detail, target_history

METRIC_CHARTS = 2  # charted by default; more on request (each chart costs the browser ~0.5 s on a busy machine)


def render() -> None:
    config = context.config()
    names = [t.name for t in config.targets]
    if not names:
        st.title("Target detail")
        st.info("No targets configured.")
        return
    wanted = st.query_params.get("target")
    if wanted is not None and wanted not in names:
        st.title("Target detail")
        st.error(f"No target named **{wanted}** in {config.source}.", icon=":material/error:")
    index = names.index(wanted) if wanted in names else 0
    left, right = st.columns([3, 2])
    name = left.selectbox("Target", names, index=index, key=f"target_pick_{wanted}")
    if name != wanted:
        st.query_params["target"] = name  # the URL always names the target shown
    window = urlstate.choice(right.segmented_control, "Window", list(WINDOWS_S), "1 h", "target_window", "window")
    st.title(name)

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live() -> None:
        model = context.read_model()
        try:
            detail = target_detail(model, name)
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)
            return
        ui.page_freshness(fresh, f"newest result {ui.age(detail.view.age_s)}")
        header(detail)
        incident(detail)
        history(model, detail, window)
        metrics(detail)
        events(detail)

    live()
    try:
        latest = context.read_model().latest([name]).get(name)
    except StoreUnavailable:
        latest = None
    if latest is not None and latest.status != "up":  # a target needing attention: what could fix it
        suggested.section(name, "target", latest)


def header(detail: TargetDetail) -> None:
    view, result = detail.view, detail.view.result
    origin = view.settings.origin or "static (config file)"
    st.markdown(f"{ui.badge(view.status)} &nbsp; **{view.name}** · {view.kind} · `{redact_url(view.settings.url)}`"
                f" · origin: {origin}")
    cols = st.columns(5)
    cols[0].metric("Latency", ui.latency(result.latency_ms if result else None))
    cols[1].metric("Version", (result.version if result else None) or "-")
    cols[2].metric("Observed", ui.age(view.age_s))
    cols[3].metric("Interval", f"{view.settings.interval_s:g} s")
    breaker = detail.breaker
    cols[4].metric("Circuit breaker", breaker.get("state", "closed"),
                   help=f"consecutive failures: {breaker.get('failures', 0)}")
    if result and result.error:
        (st.error if view.status == "down" else st.warning)(result.error, icon=":material/error:")
    if view.settings.labels:
        st.caption(" · ".join(f"{k}={v}" for k, v in sorted(view.settings.labels.items())))
    if detail.depends_on or detail.dependents:
        deps = st.columns(2)
        with deps[0]:
            st.markdown("**Depends on**")
            for dep in detail.depends_on:
                nav.link_target(dep.name, f"{dep.name} ({dep.status})")
        with deps[1]:
            st.markdown("**Needed by**")
            for dep in detail.dependents:
                nav.link_target(dep.name, f"{dep.name} ({dep.status})")


def incident(detail: TargetDetail) -> None:
    for member in detail.memberships:
        inc = member.incident
        if member.role == "root":
            st.error(f"Probable root cause of an open incident ({len(inc.dependents)} dependent(s) failing: "
                     f"{', '.join(inc.dependents[:10]) or 'none'})", icon=":material/crisis_alert:")
        else:
            st.warning(f"Part of the open incident rooted at **{inc.root}** (probably caused by it)",
                       icon=":material/crisis_alert:")
        nav.link_incident(inc.root, f"incident: {inc.root}")


def history(model: ReadModel, detail: TargetDetail, window: str) -> None:
    tracked = detail.tracked
    chosen = st.multiselect("Tracked metrics to chart", tracked, default=tracked[:min(METRIC_CHARTS, len(tracked))],
                            key=f"target_metrics_{detail.view.name}")
    hist = target_history(model, detail.view, WINDOWS_S[window], chosen, now=detail.read_at)
    s = hist.stats
    cols = st.columns(5)
    cols[0].metric(f"p50 ({window})", ui.latency(s.p50 if s.samples else None))
    cols[1].metric(f"p95 ({window})", ui.latency(s.p95 if s.samples else None))
    cols[2].metric(f"p99 ({window})", ui.latency(s.p99 if s.samples else None))
    cols[3].metric("Availability", ui.pct(s.availability, 3), help=f"{s.samples} samples, {s.down} down")
    cols[4].metric("Error budget left", ui.budget(s.budget_left_pct), help=f"objective {s.slo.availability} %")
    if len(hist.latency):
        how = "samples" if hist.latency.raw else f"per {hist.latency.width_s} s"
        st.plotly_chart(charts.latency_detail(hist.latency, f"Probe latency ({how})"), key="target_latency")
        st.plotly_chart(charts.status_strip(hist.status_ts, hist.status), key="target_status")
    else:
        st.caption("No probe samples in this window.")
    for i, (metric, buckets) in enumerate(hist.metrics.items()):
        if len(buckets):
            st.plotly_chart(charts.band(buckets, metric, ""), key=f"target_metric_{i}")


def metrics(detail: TargetDetail) -> None:
    result = detail.view.result
    st.subheader("Every metric (newest result)")
    if not result or not result.metrics:
        st.caption("No metrics in the newest result.")
    else:
        st.dataframe(pd.DataFrame({"metric": list(result.metrics), "value": list(result.metrics.values())})
                     .sort_values("metric"), hide_index=True, width="stretch", height=320)
    if result and result.details:
        with st.expander("Details (structured)"):
            st.code(json.dumps(result.details, indent=2, default=str)[:50_000], language="json")


def events(detail: TargetDetail) -> None:
    st.subheader("Events")
    if not detail.events:
        st.caption("No events recorded for this target.")
        return
    st.dataframe(pd.DataFrame([{"time": ui.utc_time(e.ts), "severity": e.severity, "source": e.source,
                                "what": e.title, "detail": e.detail} for e in detail.events]),
                 hide_index=True, width="stretch")
