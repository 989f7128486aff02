"""Latency & SLOs: percentiles per target and per kind, availability and error budget against the objective,
several targets on one chart, and the series pulled from Prometheus alongside."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import charts, context, nav, urlstate
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.readmodel import StoreUnavailable
from hulk_ops.dashboard.readmodel.latency import (
    LatencyReport,
    burn_rates,
    fleet_latency,
    kind_budgets,
    latency_series,
    pulled_series,
    worst_first,
)
from hulk_ops.dashboard.readmodel.longrange import hourly_latency
from hulk_ops.dashboard.readmodel.rollup import HIST_BUCKETS
from hulk_ops.dashboard.readmodel.series import WINDOWS_S

ALL = "all kinds"
LONG_WINDOWS_S = {"7 d": 7 * 86_400, "28 d": 28 * 86_400, "30 d": 30 * 86_400}
WINDOWS = {**WINDOWS_S, **LONG_WINDOWS_S, "custom": 0}
COMPARE_MAX = 8
STATS = ("p50", "p95", "p99")


def render() -> None:
    config = context.config()
    st.title("Latency & SLOs")
    kinds = sorted({t.kind for t in config.targets})
    left, middle, right = st.columns([2, 2, 3])
    window = urlstate.choice(left.segmented_control, "Window", list(WINDOWS), "1 h", "latency_window", "window")
    kind = urlstate.choice(middle.selectbox, "Kind", [ALL, *kinds], ALL, "latency_kind", "kind")
    stat = urlstate.choice(right.segmented_control, "Compare by", STATS, "p95", "latency_stat", "stat")
    span = custom_range() if window == "custom" else None

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live() -> None:
        model = context.read_model()
        try:
            if span is not None:
                report = fleet_latency(model, 0, None if kind == ALL else kind, start=span[0], end=span[1])
            else:
                report = fleet_latency(model, WINDOWS[window], None if kind == ALL else kind)
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)
            return
        source = "per-hour histograms" if window in WINDOWS_S else "hour and day summaries"
        note = "" if report.exact else (f"percentiles from {source} ({HIST_BUCKETS} log buckets, "
                                        f"±3.1 %), window from {ui.utc_time(report.start)}")
        ui.page_freshness(fresh, note)
        summary(report, window)
        st.subheader("Per kind")
        st.dataframe(kind_table(report), hide_index=True, width="stretch")
        st.subheader("Per target")
        burns = burn_rates(model, None if kind == ALL else kind, now=report.read_at) if window in LONG_WINDOWS_S \
            else None
        st.dataframe(target_table(report, burns), hide_index=True, width="stretch", height=360,
                     column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")})
        compare(report, window, stat)

    live()


def custom_range() -> tuple[float, float] | None:
    """A UTC date range (whole days, the last one included) picked on the page."""
    today = datetime.now(UTC).date()
    if "latency_range" not in st.session_state:  # ?from=YYYY-MM-DD&to=YYYY-MM-DD
        try:
            seeded = (date.fromisoformat(st.query_params["from"]), date.fromisoformat(st.query_params["to"]))
        except (KeyError, ValueError):
            seeded = (today - timedelta(days=7), today)
        st.session_state["latency_range"] = seeded
    picked = st.date_input("Range (UTC days)", max_value=today, key="latency_range")
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the first and the last day of the range.")
        return None
    first, last = picked
    urlstate.publish("from", first.isoformat())
    urlstate.publish("to", last.isoformat())
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    end = datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp() + 86_400 - 1
    return start, end


def summary(report: LatencyReport, window: str) -> None:
    rows = [r for r in report.rows if r.samples]
    breaching = [r for r in rows if (r.budget_left_pct or 0) < 0]
    worst = min(rows, key=lambda r: r.budget_left_pct or 0.0, default=None)
    cols = st.columns(4)
    cols[0].metric(f"Targets with samples ({window})", f"{len(rows)} / {len(report.rows)}")
    cols[1].metric("Error budget overspent", len(breaching))
    cols[2].metric("Least error budget left", ui.budget(worst.budget_left_pct) if worst else "-",
                   help=worst.target if worst else None)
    total = sum(k.samples for k in report.kinds)
    down = sum(k.down for k in report.kinds)
    cols[3].metric("Availability (all samples)", ui.pct(100.0 * (total - down) / total, 3) if total else "-")


def _num(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def kind_table(report: LatencyReport) -> pd.DataFrame:
    budgets = kind_budgets(report.rows)
    return pd.DataFrame([{
        "kind": k.kind, "targets": k.targets, "samples": k.samples, "p50 ms": _num(k.p50), "p95 ms": _num(k.p95),
        "p99 ms": _num(k.p99), "availability %": _num(k.availability, 3),
        "budget left %": _num(budgets.get(k.kind), 1),
    } for k in report.kinds])


def target_table(report: LatencyReport,
                 burns: dict[str, dict[str, float | None]] | None = None) -> pd.DataFrame:
    """Least error budget left first, then the slowest p95 (columns built whole: 2,000 rows stay cheap); with
    `burns`, the burn rate over 1 h, 6 h and 3 d ending now (long windows)."""
    rows = sorted(report.rows, key=lambda r: (r.budget_left_pct if r.budget_left_pct is not None else math.inf,
                                              -(r.p95 if r.p95 == r.p95 else 0.0)))
    frame = pd.DataFrame({
        "target": [r.target for r in rows], "kind": [r.kind for r in rows],
        "samples": [r.samples for r in rows], "down": [r.down for r in rows],
        "p50 ms": [r.p50 for r in rows], "p95 ms": [r.p95 for r in rows], "p99 ms": [r.p99 for r in rows],
        "availability %": [r.availability for r in rows], "objective %": [r.slo.availability for r in rows],
        "budget left %": [r.budget_left_pct for r in rows],
        "p95 objective ms": [r.slo.latency_p95_ms for r in rows],
        "p95 within": [None if r.latency_ok is None else ("yes" if r.latency_ok else "NO") for r in rows],
        "detail": [nav.target_url(r.target) for r in rows],
    })
    digits = {"p50 ms": 2, "p95 ms": 2, "p99 ms": 2, "availability %": 3, "budget left %": 1}
    if burns is not None:
        for label in ("1h", "6h", "3d"):
            frame.insert(len(frame.columns) - 1, f"burn {label}", [burns.get(r.target, {}).get(label) for r in rows])
            digits[f"burn {label}"] = 2
    return frame.round(digits)


def compare(report: LatencyReport, window: str, stat: str) -> None:
    st.subheader("Compare targets")
    model = context.read_model()
    options = [r.target for r in report.rows]
    key = "latency_compare"
    wanted = st.query_params.get_all("target")
    if key not in st.session_state:
        st.session_state[key] = [t for t in wanted if t in options] or worst_first(report.rows, 3)
    st.session_state[key] = [t for t in st.session_state[key] if t in options]
    chosen = st.multiselect("Targets", options, key=key, max_selections=COMPARE_MAX)
    if chosen and (window not in WINDOWS_S):
        hourly = {name: b for name, b in hourly_latency(model, chosen, report.start, report.end).items() if len(b)}
        if hourly:  # a figure without traces makes Plotly raise
            st.plotly_chart(charts.lines(hourly, stat, f"Probe latency ({stat} per hour, from hour summaries)", "ms"),
                            key="latency_chart")
        else:
            st.caption("No hour summary of these targets in this window yet (the collectors write one as each "
                       "hour closes).")
    elif chosen:
        series = latency_series(model, chosen, WINDOWS_S[window], now=report.read_at)
        first = next(iter(series.values()))
        how = "raw samples" if first.raw else f"{stat} per {first.width_s} s bucket"
        st.plotly_chart(charts.lines(series, stat if not first.raw else "p50", f"Probe latency ({how})", "ms"),
                        key="latency_chart")
    names = model.series_names() if window in WINDOWS_S else []
    if names:
        st.subheader("Prometheus series")
        picked = st.multiselect("Series", names, default=names[:min(3, len(names))], key="latency_series",
                                max_selections=COMPARE_MAX)
        if picked:
            pulled = pulled_series(model, picked, WINDOWS_S[window], now=report.read_at)
            st.plotly_chart(charts.lines(pulled, "mean", "Pulled series (mean per bucket)", ""), key="pulled_chart")
