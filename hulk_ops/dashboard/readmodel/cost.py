"""Cost: what runs now ($/h), what the window cost, where the month is heading against the budget.

- RunPod pods: the newest runpod results' `details.pods`; current $/h is the sum of the RUNNING
  pods' costPerHr. Idle pods are the ones the probe flagged (GPU utilisation under idle_util_pct).
- Serverless: running workers of each watched endpoint x `cost.worker_hour_usd` (default
  `actions.prices.gpu_hour`); an endpoint with running or idle workers and no job queued or in
  progress is flagged as paying for nothing.
- Kubernetes: per namespace, requested CPU cores, memory GiB and GPUs x `actions.prices`.

Months before this one, and the part of this one the raw history no longer holds, come from the hour and
day summaries of the long-range tier (`readmodel/longrange.py`): each summarised hour or day costs its mean
rate x the time its samples cover (`period_usd`).

Spend over a window integrates the stored rate histories (RunPod `cost_per_hr_total`, workers
`endpoint.*.workers_running`, cluster `cpu_requests` / `memory_requests_gib` / `gpu_requests`): a
rate holds until the next sample, for at most 3 probe intervals (a gap is not billed). Days and
months are UTC. Month to date is the stored spend since the 1st; when retention does not reach
back that far the rest of the month is estimated at the stored average rate (`estimated`).
Runway is the budget left this month divided by the current daily burn.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from hulk_ops.core.action_config import PriceSettings
from hulk_ops.dashboard.readmodel.store import ReadModel, TargetView

if TYPE_CHECKING:
    from hulk_ops.dashboard.readmodel.longrange import Period

GAP_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class PodCost:
    target: str
    id: str
    name: str
    status: str
    gpu_type: str
    gpu_count: int
    cost_per_hr: float
    gpu_util_pct: float | None
    idle: bool


@dataclass(frozen=True, slots=True)
class WorkerCost:
    target: str
    endpoint: str
    running: int
    idle: int
    jobs_waiting: int
    cost_per_hr: float

    @property
    def paying_for_nothing(self) -> bool:
        return self.running + self.idle > 0 and self.jobs_waiting == 0


@dataclass(frozen=True, slots=True)
class NamespaceCost:
    target: str
    namespace: str
    cpu: float
    memory_gib: float
    gpu: float
    cost_per_hr: float


@dataclass(frozen=True, slots=True)
class Budget:
    monthly_usd: float
    month_to_date_usd: float
    estimated: bool  # part of the month is older than the stored history
    projected_month_usd: float
    runway_days: float | None  # None: nothing is burning

    @property
    def used_pct(self) -> float:
        return 100.0 * self.month_to_date_usd / self.monthly_usd


@dataclass(frozen=True, slots=True)
class CostReport:
    pods: list[PodCost]
    workers: list[WorkerCost]
    namespaces: list[NamespaceCost]
    runpod_per_hr: float
    workers_per_hr: float
    k8s_per_hr: float
    window_s: float
    window_spend_usd: float
    window_covered_s: float
    today_usd: float
    projected_day_usd: float
    projected_month_usd: float
    month_to_date_usd: float
    month_estimated: bool
    budget: Budget | None
    read_at: float
    not_fresh: list[str] = field(default_factory=list)  # cost sources whose newest result is not current
    runpod_rates: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # target -> ts, $/h

    @property
    def total_per_hr(self) -> float:
        return self.runpod_per_hr + self.workers_per_hr + self.k8s_per_hr

    @property
    def idle_per_hr(self) -> float:
        return sum(p.cost_per_hr for p in self.pods if p.idle and p.status == "RUNNING")


def spends(ts: np.ndarray, per_hr: np.ndarray, starts: list[float], end: float, max_gap_s: float) -> np.ndarray:
    """USD spent in [s, end] for each s in `starts` by a $/h rate sampled at ts: each value holds until the
    next sample, at most max_gap_s (one pass for all starts: held durations and a reverse cumulative sum)."""
    ts = np.asarray(ts, dtype=np.float64)
    per_hr = np.asarray(per_hr, dtype=np.float64)
    keep = (ts <= end) & ~np.isnan(per_hr)
    ts, per_hr = ts[keep], per_hr[keep]
    if ts.size == 0:
        return np.zeros(len(starts))
    if np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")
        ts, per_hr = ts[order], per_hr[order]
    held = np.minimum(np.diff(np.append(ts, end)), max_gap_s)
    tail = np.append(np.cumsum((per_hr * held / 3600.0)[::-1])[::-1], 0.0)  # tail[i]: spend of samples i..
    return tail[np.searchsorted(ts, np.asarray(starts, dtype=np.float64), side="left")]


def integrate_usd(ts: np.ndarray, per_hr: np.ndarray, start: float, end: float, max_gap_s: float) -> float:
    """USD spent in [start, end] by a $/h rate sampled at ts (each value holds up to max_gap_s)."""
    return float(spends(ts, per_hr, [start], end, max_gap_s)[0])


def month_start(now: float) -> float:
    d = datetime.fromtimestamp(now, UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()


def day_start(now: float) -> float:
    d = datetime.fromtimestamp(now, UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def month_end(now: float) -> float:
    d = datetime.fromtimestamp(now, UTC)
    return month_start(now) + calendar.monthrange(d.year, d.month)[1] * 86400.0


def pods_of(view: TargetView) -> list[PodCost]:
    details = view.result.details if view.result else {}
    out = []
    for pod in details.get("pods") or []:
        out.append(PodCost(view.name, str(pod.get("id") or ""), str(pod.get("name") or ""),
                           str(pod.get("status") or "UNKNOWN"), str(pod.get("gpu_type") or ""),
                           int(pod.get("gpu_count") or 0), float(pod.get("cost_per_hr") or 0.0),
                           pod.get("gpu_util_pct"), bool(pod.get("idle"))))
    return out


def workers_of(view: TargetView, worker_hour: float) -> list[WorkerCost]:
    details = view.result.details if view.result else {}
    out = []
    for endpoint in details.get("endpoints") or []:
        workers, jobs = endpoint.get("workers") or {}, endpoint.get("jobs") or {}
        running, idle = int(workers.get("running") or 0), int(workers.get("idle") or 0)
        waiting = int(jobs.get("inQueue") or 0) + int(jobs.get("inProgress") or 0)
        out.append(WorkerCost(view.name, str(endpoint.get("id")), running, idle, waiting, running * worker_hour))
    return out


def namespaces_of(view: TargetView, prices: PriceSettings) -> list[NamespaceCost]:
    metrics = view.result.metrics if view.result else {}
    names = sorted({m.split(".")[1] for m in metrics if m.startswith("ns.") and m.count(".") >= 2})
    out = []
    for ns in names:
        cpu = metrics.get(f"ns.{ns}.cpu_requests", 0.0)
        mem = metrics.get(f"ns.{ns}.memory_requests_gib", 0.0)
        gpu = metrics.get(f"ns.{ns}.gpu_requests", 0.0)
        out.append(NamespaceCost(view.name, ns, cpu, mem, gpu,
                                 cpu * prices.cpu_hour + mem * prices.gib_hour + gpu * prices.gpu_hour))
    return out


def _sources(model: ReadModel, now: float) -> tuple[PriceSettings, float, list[TargetView]]:
    """Unit prices, the $ of a serverless worker-hour and the views of the targets that cost money."""
    config = model.config
    prices = config.actions.prices
    worker_hour = config.cost.worker_hour_usd if config.cost.worker_hour_usd is not None else prices.gpu_hour
    names = [t.name for t in config.targets if t.kind in ("runpod", "kubernetes")]
    return prices, worker_hour, model.target_views(now, names=names)


def cost_report(model: ReadModel, window_s: float, now: float | None = None) -> CostReport:
    now = time.time() if now is None else now
    config = model.config
    prices, worker_hour, views = _sources(model, now)
    pods = [p for v in views if v.kind == "runpod" for p in pods_of(v)]
    workers = [w for v in views if v.kind == "runpod" for w in workers_of(v, worker_hour)]
    namespaces = [n for v in views if v.kind == "kubernetes" for n in namespaces_of(v, prices)]
    m_start, d_start, w_start = month_start(now), day_start(now), now - window_s
    retention_start = now - config.store.retention_h * 3600.0
    # the month to date needs everything since the 1st that is still stored
    wanted = _wanted(model, views, worker_hour, prices)
    rates = _rate_histories(model, wanted, max(min(m_start, d_start, w_start), retention_start - 3600.0), now)
    covered_from = min((float(ts[0]) for _, _, ts, _, _ in rates if ts.size), default=now)
    totals = np.zeros(3)
    for _, _, ts, usd_per_hr, gap in rates:
        totals += spends(ts, usd_per_hr, [w_start, d_start, m_start], now, gap)
    window_spend, today, mtd = (float(x) for x in totals)
    summarised = summarised_spend(model, wanted, m_start, now)
    if any(cut for _, cut in summarised.values()):
        # the hour and day summaries since the 1st, then the raw history after the newest summarised period
        mtd, covered_from = 0.0, m_start
        for target, metric, ts, usd_per_hr, gap in rates:
            usd, cut = summarised.get((target, metric), (0.0, 0.0))
            cut_at = max(float(cut), m_start)
            mtd += usd + float(spends(ts, usd_per_hr, [cut_at], now, gap)[0])
            if cut_at < retention_start:  # raw history does not reach back to where the summaries end
                covered_from = max(covered_from, retention_start)
    per_hr = (sum(p.cost_per_hr for p in pods if p.status == "RUNNING"), sum(w.cost_per_hr for w in workers),
              sum(n.cost_per_hr for n in namespaces))
    total = sum(per_hr)
    estimated = retention_start > m_start and covered_from > m_start + 1.0
    if estimated:
        stored_hours = max((now - max(covered_from, m_start)) / 3600.0, 1e-9)
        mtd += mtd / stored_hours * (max(covered_from, m_start) - m_start) / 3600.0
    projected_day = today + total * (d_start + 86400.0 - now) / 3600.0
    projected_month = mtd + total * (month_end(now) - now) / 3600.0
    budget = None
    if config.cost.monthly_budget_usd is not None:
        runway = (config.cost.monthly_budget_usd - mtd) / (total * 24.0) if total > 0 else None
        budget = Budget(config.cost.monthly_budget_usd, mtd, estimated, projected_month,
                        max(runway, 0.0) if runway is not None else None)
    return CostReport(
        pods=pods, workers=workers, namespaces=namespaces, runpod_per_hr=per_hr[0], workers_per_hr=per_hr[1],
        k8s_per_hr=per_hr[2], window_s=window_s, window_spend_usd=window_spend,
        window_covered_s=max(0.0, now - max(covered_from, w_start)), today_usd=today,
        projected_day_usd=projected_day, projected_month_usd=projected_month, month_to_date_usd=mtd,
        month_estimated=estimated, budget=budget, read_at=now,
        not_fresh=[v.name for v in views if v.status in ("stale", "unknown", "down")],
        runpod_rates={t: (ts, v) for t, m, ts, v, _ in rates if m == "cost_per_hr_total"},
    )


Wanted = list[tuple[str, str, float, float]]  # target, metric, price per unit-hour, max gap


def _wanted(model: ReadModel, views: Iterable[TargetView], worker_hour: float, prices: PriceSettings) -> Wanted:
    """Every cost-rate series: (target, metric, price per unit-hour, max gap between samples)."""
    wanted: Wanted = []
    for view in views:
        gap = GAP_INTERVALS * view.settings.interval_s
        if view.kind == "runpod":
            wanted.append((view.name, "cost_per_hr_total", 1.0, gap))
            if worker_hour:
                wanted += [(view.name, m, worker_hour, gap) for m in model.tracked_metrics(view.name)
                           if m.endswith(".workers_running")]
        else:
            wanted += [(view.name, metric, price, gap) for metric, price in (
                ("cpu_requests", prices.cpu_hour), ("memory_requests_gib", prices.gib_hour),
                ("gpu_requests", prices.gpu_hour)) if price]
    return wanted


def _interval(model: ReadModel, target: str) -> float:
    found = model.memo.setdefault("intervals", {})
    if not found:
        found.update({t.name: t.interval_s for t in model.config.targets})
    return found.get(target, 60.0)


def period_usd(period: Period, price: float, interval_s: float) -> float:
    """What a summarised period of a $/unit-hour rate cost: its mean x price x the hours its samples cover."""
    coverage = min(1.0, period.samples * interval_s / period.length_s)
    return period.stats.mean * price * period.length_s / 3600.0 * coverage


def summarised_spend(model: ReadModel, wanted: Wanted, start: float, end: float
                     ) -> dict[tuple[str, str], tuple[float, float]]:
    """Per series: USD over the summarised periods that lie wholly in [start, end], and the end of the newest
    of them (0: none), where raw history has to take over."""
    from hulk_ops.dashboard.readmodel.longrange import metric_periods

    periods = metric_periods(model, [(t, m) for t, m, _, _ in wanted], start, end)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for target, metric, price, _gap in wanted:
        inside = [p for p in periods.get((target, metric), []) if p.start >= start and p.start + p.length_s <= end]
        usd = sum(period_usd(p, price, _interval(model, target)) for p in inside)
        cut = max((p.start + p.length_s for p in inside), default=0.0)
        out[(target, metric)] = (usd, cut)
    return out


@dataclass(frozen=True, slots=True)
class MonthCost:
    month: str  # YYYY-MM
    start: float
    end: float  # the month's end, or now for the month under way
    runpod_usd: float
    workers_usd: float
    kubernetes_usd: float
    days_covered: int  # days with a summary of any cost series
    month_end: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.runpod_usd + self.workers_usd + self.kubernetes_usd

    @property
    def days(self) -> int:
        """Days of the month so far (all of them once it is over)."""
        return max(1, int(-(-(self.end - self.start) // 86_400)))

    @property
    def complete(self) -> bool:
        """Whether the history covers every day of the month (so far)."""
        return self.days_covered >= self.days


def monthly_costs(model: ReadModel, months: int = 12, now: float | None = None) -> list[MonthCost]:
    """Spend per UTC month, the current one to date, from the hour and day summaries (newest last)."""
    now = time.time() if now is None else now
    config = model.config
    prices, worker_hour, views = _sources(model, now)
    wanted = _wanted(model, views, worker_hour, prices)
    d = datetime.fromtimestamp(now, UTC)
    index = d.year * 12 + d.month - 1
    bounds = []
    for m in range(index - months + 1, index + 1):
        first = datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC).timestamp()
        bounds.append((f"{m // 12:04d}-{m % 12 + 1:02d}", first, min(month_end(first), now)))
    from hulk_ops.dashboard.readmodel.longrange import metric_periods

    periods = metric_periods(model, [(t, m) for t, m, _, _ in wanted], bounds[0][1], now)
    kinds = {t.name: t.kind for t in config.targets}
    out = []
    for label, first, last in bounds:
        usd = {"runpod": 0.0, "workers": 0.0, "kubernetes": 0.0}
        days: set[int] = set()
        for target, metric, price, _gap in wanted:
            source = "workers" if metric.endswith(".workers_running") else kinds.get(target, "kubernetes")
            for p in periods.get((target, metric), []):
                if first <= p.start < last:
                    usd[source] += period_usd(p, price, _interval(model, target))
                    days.add(int(p.start // 86_400))
        out.append(MonthCost(label, first, last, usd["runpod"], usd["workers"], usd["kubernetes"], len(days),
                             month_end(first)))
    return out


def month_cost(model: ReadModel, month: int | None = None, now: float | None = None) -> MonthCost | None:
    """One UTC month (index year * 12 + month - 1; default this one) from the summaries; None if not begun."""
    now = time.time() if now is None else now
    d = datetime.fromtimestamp(now, UTC)
    current = d.year * 12 + d.month - 1
    month = current if month is None else month
    if month > current:
        return None
    return monthly_costs(model, current - month + 1, now)[0]


def _rate_histories(model: ReadModel, wanted: Wanted, start: float,
                    end: float) -> list[tuple[str, str, np.ndarray, np.ndarray, float]]:
    """(target, metric, ts, $/h, max gap) of every stored cost-rate series in [start, end] (one MGET)."""
    histories = model.metric_histories([(t, m) for t, m, _, _ in wanted], start, end)
    return [(target, metric, data["ts"], data["value"].astype(np.float64) * price, gap)
            for (target, metric, price, gap), data in zip(wanted, histories, strict=True)]
