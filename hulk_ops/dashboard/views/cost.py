"""Cost: RunPod pods and serverless workers, Kubernetes requests by namespace, spend over the window,
projections against the monthly budget, idle GPUs, and a CSV for cost reviews."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import charts, context, nav, urlstate
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
from hulk_ops.dashboard.readmodel.cost import CostReport, MonthCost, cost_report, monthly_costs
from hulk_ops.dashboard.readmodel.series import WINDOWS_S, bucketize

CHART_POINTS = 500  # a rate that changes in steps: 500 points (3 min buckets over a day) draw it faithfully


def render() -> None:
    config = context.config()
    st.title("Cost")
    window = urlstate.choice(st.segmented_control, "Window", list(WINDOWS_S), "24 h", "cost_window", "window")

    @st.fragment(run_every=max(config.dashboard.refresh_s, 15.0))
    def live() -> None:
        model = context.read_model()
        try:
            report = cost_report(model, WINDOWS_S[window])
            fresh = model.freshness()
        except StoreUnavailable as exc:
            ui.store_error(exc, max(config.dashboard.refresh_s, 15.0))
            return
        ui.page_freshness(fresh, "days and months are UTC")
        if report.not_fresh:
            st.warning(f"Cost sources not current (down, stale or never seen): {', '.join(report.not_fresh)} — "
                       "their figures are the last known ones.", icon=":material/warning:")
        headline(report, window)
        budget(report)
        st.download_button("Download CSV (cost review)", csv(report), file_name="hulk-ops-cost.csv",
                           mime="text/csv", icon=":material/download:")
        pods(report)
        workers(report)
        namespaces(report)
        spend_chart(model, report)
        by_month(model, report)

    live()


def headline(report: CostReport, window: str) -> None:
    cols = st.columns(5)
    cols[0].metric("Now, all sources", f"{ui.money(report.total_per_hr)}/h")
    cols[1].metric("RunPod pods", f"{ui.money(report.runpod_per_hr)}/h",
                   help="sum of costPerHr over the RUNNING pods of the newest runpod results")
    cols[2].metric("Serverless workers", f"{ui.money(report.workers_per_hr)}/h")
    if prices_unset():
        cols[3].metric("Kubernetes requests", "no prices", help="actions.prices (cpu_hour, gib_hour, gpu_hour) are "
                       "unset in the config, so Kubernetes requests cannot be priced")
    else:
        cols[3].metric("Kubernetes requests", f"{ui.money(report.k8s_per_hr)}/h")
    cols[4].metric("Idle GPU pods", f"{ui.money(report.idle_per_hr)}/h",
                   help="running pods whose GPUs report utilisation under the target's idle_util_pct")
    spent = st.columns(4)
    covered = "" if report.window_covered_s >= report.window_s - 60 else \
        f" (history covers {ui.duration(report.window_covered_s)})"
    spent[0].metric(f"Spent, last {window}", ui.money(report.window_spend_usd),
                    help="integrated from stored rates" + covered)
    spent[1].metric("Today so far (UTC)", ui.money(report.today_usd))
    spent[2].metric("Projected today", ui.money(report.projected_day_usd),
                    help="today so far + the current rate until midnight UTC")
    spent[3].metric("Projected month", ui.money(report.projected_month_usd),
                    help="month to date + the current rate until the month ends")


def budget(report: CostReport) -> None:
    b = report.budget
    if b is None:
        st.info("No budget: set `cost: {monthly_budget_usd: N}` in the config for burn rate and runway.",
                icon=":material/info:")
        return
    cols = st.columns(4)
    cols[0].metric("Monthly budget", ui.money(b.monthly_usd, 0))
    cols[1].metric("Month to date" + (" (estimated)" if b.estimated else ""), ui.money(b.month_to_date_usd),
                   f"{b.used_pct:.1f} % of budget", delta_color="off",
                   help="stored spend since the 1st; estimated at the stored average rate for the part older "
                        "than the history" if b.estimated else "stored spend since the 1st (UTC)")
    cols[2].metric("Burn rate", f"{ui.money(report.total_per_hr * 24)}/day")
    cols[3].metric("Runway", "-" if b.runway_days is None else f"{b.runway_days:.1f} days",
                   help="budget left this month / current daily burn")
    if b.projected_month_usd > b.monthly_usd:
        st.error(f"At the current rate this month ends at {ui.money(b.projected_month_usd)}, "
                 f"{ui.money(b.projected_month_usd - b.monthly_usd)} over budget.", icon=":material/trending_up:")


def pods(report: CostReport) -> None:
    st.subheader("RunPod pods")
    if not report.pods:
        st.caption("No RunPod pods (or no runpod target).")
        return
    frame = pd.DataFrame([{
        "target": p.target, "pod": p.name, "id": p.id, "status": p.status, "GPUs": f"{p.gpu_count} × {p.gpu_type}",
        "$/h": p.cost_per_hr, "GPU util %": p.gpu_util_pct, "idle": "IDLE" if p.idle else "",
        "$/month at this rate": round(p.cost_per_hr * 730, 2),
    } for p in sorted(report.pods, key=lambda p: (p.status != "RUNNING", not p.idle, -p.cost_per_hr))])
    st.dataframe(frame, hide_index=True, width="stretch")


def workers(report: CostReport) -> None:
    if not report.workers:
        return
    st.subheader("Serverless endpoints")
    frame = pd.DataFrame([{
        "target": w.target, "endpoint": w.endpoint, "workers running": w.running, "workers idle": w.idle,
        "jobs queued or running": w.jobs_waiting, "$/h": round(w.cost_per_hr, 4),
        "flag": "workers up, no jobs" if w.paying_for_nothing else "",
    } for w in report.workers])
    st.dataframe(frame, hide_index=True, width="stretch")


def prices_unset() -> bool:
    """Whether no unit price is configured (every Kubernetes figure would then be a meaningless $0.00)."""
    prices = context.config().actions.prices
    return prices.cpu_hour == 0 and prices.gib_hour == 0 and prices.gpu_hour == 0


def namespaces(report: CostReport) -> None:
    st.subheader("Kubernetes by namespace")
    if prices_unset():
        st.info("Kubernetes requests are not priced: set actions.prices (cpu_hour, gib_hour, gpu_hour) in the "
                "config to see their cost.", icon=":material/info:")
    if not report.namespaces:
        st.caption("No Kubernetes namespace requests (or no kubernetes target).")
        return
    frame = pd.DataFrame([{
        "target": n.target, "namespace": n.namespace, "CPU cores": n.cpu, "memory GiB": n.memory_gib,
        "GPUs": n.gpu, "$/h": round(n.cost_per_hr, 4), "$/month at this rate": round(n.cost_per_hr * 730, 2),
    } for n in sorted(report.namespaces, key=lambda n: -n.cost_per_hr)])
    st.dataframe(frame, hide_index=True, width="stretch")


def csv(report: CostReport) -> str:
    rows = [{"source": "runpod pod", "target": p.target, "item": f"{p.name} ({p.id})", "status": p.status,
             "usd_per_hour": p.cost_per_hr, "idle": p.idle} for p in report.pods]
    rows += [{"source": "runpod serverless", "target": w.target, "item": w.endpoint, "status": f"{w.running} running",
              "usd_per_hour": w.cost_per_hr, "idle": w.paying_for_nothing} for w in report.workers]
    rows += [{"source": "kubernetes namespace", "target": n.target, "item": n.namespace, "status": "",
              "usd_per_hour": n.cost_per_hr, "idle": False} for n in report.namespaces]
    frame = pd.DataFrame(rows, columns=["source", "target", "item", "status", "usd_per_hour", "idle"])
    frame["usd_per_day"] = frame["usd_per_hour"] * 24
    frame["usd_per_month"] = frame["usd_per_hour"] * 730
    return frame.to_csv(index=False)


MONTHS = 12


def by_month(model: ReadModel, report: CostReport) -> None:
    """Spend per UTC month over the last year, from the long-range summaries, with the change against the month
    before; this month to date and its projection as above."""
    months = monthly_costs(model, MONTHS, now=report.read_at)
    if not any(m.days_covered for m in months):
        return
    st.subheader("Month by month")
    frame = month_table(months)
    st.dataframe(frame, hide_index=True, width="stretch")
    this = months[-1]
    st.caption(f"From the hour and day summaries: each hour or day costs its mean rate x the time its samples "
               f"cover. {this.month} so far: history on {this.days_covered} of {this.days} days"
               f"{'' if this.complete else ' (incomplete: the projection above is partly estimated)'}; its "
               f"month to date above adds the raw history since the last closed hour.")
    st.download_button("Download CSV (months)", frame.to_csv(index=False), file_name="hulk-ops-cost-months.csv",
                       mime="text/csv", icon=":material/download:", key="cost_months_csv")


def month_table(months: Sequence[MonthCost]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    previous: float | None = None
    for m in months:
        if not m.days_covered:
            previous = None
            continue
        change = None if previous is None or previous <= 0 else round(100.0 * (m.total_usd / previous - 1), 1)
        rows.append({"month": m.month, "runpod pods $": round(m.runpod_usd, 2),
                     "serverless $": round(m.workers_usd, 2), "kubernetes $": round(m.kubernetes_usd, 2),
                     "total $": round(m.total_usd, 2), "vs previous %": change,
                     "days with data": f"{m.days_covered} / {m.days}", "complete": "yes" if m.complete else "no"})
        previous = m.total_usd
    return pd.DataFrame(rows)


def spend_chart(model: ReadModel, report: CostReport) -> None:
    if not report.runpod_rates:
        return
    start = report.read_at - report.window_s
    series = {name: bucketize(ts, rate, start, report.read_at, max_points=CHART_POINTS, how="mean")
              for name, (ts, rate) in sorted(report.runpod_rates.items())}
    series = {name: buckets for name, buckets in series.items() if len(buckets)}
    if not series:  # a figure without traces makes Plotly raise (PlotlyEmptyDataError)
        st.caption("No RunPod spend sample in this window yet.")
        return
    st.plotly_chart(charts.lines(series, "mean", "RunPod $/h over the window", "$/h"), key="cost_chart")
    for name in series:
        nav.link_target(name, f"{name}: target detail")
