"""The incident timeline: one list of what happened, from every source, newest first.

Sources:
- the store's event stream: probe state changes (`source=probe`), operator actions
  (`source=action`) and any other event with a `source` field (shown generically);
- firing Prometheus alerts (`details.alerts` of the newest prometheus results, at `active_at`);
- Kubernetes Warning events (`details.events` of the newest kubernetes results);
- RunPod: pods started (newest runpod results, `uptime_s` back from the observation) and changes
  in the stored counts of running pods, GPUs and serverless workers.

Severity: critical (a target down, a critical/page alert), warning (degraded, a warning alert, a
Kubernetes Warning, an action that failed or was refused, unhealthy workers rising), info (the rest).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hulk_ops.core.model import parse_iso
from hulk_ops.dashboard.readmodel.store import Event, ReadModel, TargetView

SEVERITIES = ("critical", "warning", "info")
EVENTS_LIMIT = 5000
CHANGES_PER_SERIES = 200
RUNPOD_COUNTS = {"pods_running": "pods running", "gpus_running": "GPUs running"}
ALERT_SEVERITY = {"critical": "critical", "page": "critical", "error": "critical", "warning": "warning",
                  "info": "info", "none": "info"}
FAILED_OUTCOMES = ("failed", "error", "denied", "refused", "rejected", "expired")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: float
    source: str  # probe | prometheus | kubernetes | runpod | action | whatever an event says
    target: str
    kind: str
    severity: str  # critical | warning | info
    title: str
    detail: str = ""


def _ts(text: object, fallback: float) -> float:
    try:
        return parse_iso(str(text)).timestamp() if text else fallback
    except ValueError:
        return fallback


def from_event(event: Event, kinds: dict[str, str]) -> TimelineEntry:
    f = event.fields
    source = f.get("source") or "probe"
    target = f.get("target", "")
    kind = f.get("kind") or kinds.get(target, "")
    if f.get("type") == "state_change" or (source == "probe" and "current" in f):
        current = f.get("current", "")
        severity = {"down": "critical", "degraded": "warning"}.get(current, "info")
        return TimelineEntry(_ts(f.get("at"), event.ts), "probe", target, kind, severity,
                             f"{f.get('previous') or 'new'} → {current}", f.get("error", ""))
    if source == "action":
        outcome = f.get("outcome", "")
        severity = "warning" if outcome in FAILED_OUTCOMES or f.get("error") else "info"
        title = f"{f.get('action', 'action')} {outcome}".strip() + (f" by {f['user']}" if f.get("user") else "")
        detail = " · ".join(x for x in (f.get("object", ""), f.get("summary", ""), f.get("error", "")) if x)
        return TimelineEntry(_ts(f.get("at"), event.ts), "action", target, kind, severity, title, detail)
    shown = {"source", "target", "kind", "at", "type", "severity", "title"}
    detail = " · ".join(f"{k}={v}" for k, v in f.items() if k not in shown and v)
    given = f.get("severity", "")
    severity = given if given in SEVERITIES else "info"
    return TimelineEntry(_ts(f.get("at"), event.ts), source, target, kind, severity,
                         f.get("title") or f.get("type") or source, detail)


def alerts_of(view: TargetView) -> Iterator[TimelineEntry]:
    result = view.result
    if result is None:
        return
    for alert in result.details.get("alerts") or []:
        label = str(alert.get("severity") or "warning").lower()
        labels = alert.get("labels") or {}
        where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "severity")
        detail = " · ".join(x for x in (alert.get("summary") or "", where) if x)
        yield TimelineEntry(_ts(alert.get("active_at"), result.observed_ts), "prometheus", view.name, view.kind,
                            ALERT_SEVERITY.get(label, "warning"), f"alert {alert.get('name', '?')} firing", detail)


def k8s_events_of(view: TargetView) -> Iterator[TimelineEntry]:
    result = view.result
    if result is None:
        return
    for event in result.details.get("events") or []:
        count = int(event.get("count") or 1)
        where = f"{event.get('namespace') or '-'}/{event.get('object', '')}"
        detail = (event.get("message") or "") + (f" (×{count})" if count > 1 else "")
        yield TimelineEntry(_ts(event.get("time"), result.observed_ts), "kubernetes", view.name, view.kind,
                            "warning", f"{event.get('reason', 'Warning')} {where}", detail)


def runpod_pods_of(view: TargetView) -> Iterator[TimelineEntry]:
    result = view.result
    if result is None:
        return
    for pod in result.details.get("pods") or []:
        uptime = pod.get("uptime_s")
        if pod.get("status") == "RUNNING" and isinstance(uptime, int | float):
            gpus = f"{pod.get('gpu_count') or 0} × {pod.get('gpu_type') or 'GPU'}"
            yield TimelineEntry(result.observed_ts - float(uptime), "runpod", view.name, view.kind, "info",
                                f"pod {pod.get('name') or pod.get('id')} started",
                                f"{gpus} · ${float(pod.get('cost_per_hr') or 0):.2f}/h")



def count_changes(model: ReadModel, view: TargetView, start: float, end: float,
                  limit: int = CHANGES_PER_SERIES) -> list[TimelineEntry]:
    """Changes in RunPod's stored counts (pods, GPUs, serverless workers) between consecutive samples
    (the newest `limit` per series)."""
    metrics = dict(RUNPOD_COUNTS)
    for name in model.tracked_metrics(view.name):
        if name.startswith("endpoint.") and name.endswith((".workers_running", ".workers_unhealthy")):
            endpoint, what = name.split(".")[1], name.rsplit("_", 1)[1]
            metrics[name] = f"endpoint {endpoint} workers {what}"
    out = []
    histories = model.metric_histories([(view.name, m) for m in metrics], start, end)
    for (metric, label), data in zip(metrics.items(), histories, strict=True):
        if data.size < 2:
            continue
        if np.any(np.diff(data["ts"]) < 0):  # chunks are in time order; a late append is not
            data = data[np.argsort(data["ts"], kind="stable")]
        values = data["value"]
        changed = (np.nonzero(np.diff(values) != 0)[0] + 1)[-limit:]
        for i in changed:
            before, after = float(values[i - 1]), float(values[i])
            severity = "warning" if metric.endswith("unhealthy") and after > before else "info"
            out.append(TimelineEntry(float(data["ts"][i]), "runpod", view.name, view.kind, severity,
                                     f"{label} {before:g} → {after:g}"))
    return out


@dataclass(frozen=True, slots=True)
class Filters:
    targets: Sequence[str] = ()
    kinds: Sequence[str] = ()
    severities: Sequence[str] = ()
    sources: Sequence[str] = ()

    def keep(self, entry: TimelineEntry) -> bool:
        return ((not self.targets or entry.target in self.targets) and (not self.kinds or entry.kind in self.kinds)
                and (not self.severities or entry.severity in self.severities)
                and (not self.sources or entry.source in self.sources))


def timeline(model: ReadModel, start: float, end: float | None = None, filters: Filters = Filters(),
             views: Sequence[TargetView] | None = None) -> list[TimelineEntry]:
    """Every entry in [start, end] that passes the filters, newest first."""
    end = time.time() if end is None else end
    kinds = {t.name: t.kind for t in model.config.targets}
    # stream ids are arrival times, never earlier than the time an event happened: `since` can use them,
    # `until` cannot (a change observed before `end` may have been written after it)
    entries = [from_event(e, kinds) for e in model.events(EVENTS_LIMIT, since=start - 300)]
    wanted = ("prometheus", "kubernetes", "runpod")
    names = [t.name for t in model.config.targets if t.kind in wanted and (not filters.targets or
                                                                            t.name in filters.targets)]
    if views is None:
        views = model.target_views(end, names=names)
    for view in views:
        if view.name not in names:
            continue
        if view.kind == "prometheus":
            entries.extend(alerts_of(view))
        elif view.kind == "kubernetes":
            entries.extend(k8s_events_of(view))
        elif view.kind == "runpod":
            entries.extend(runpod_pods_of(view))
            entries.extend(count_changes(model, view, start, end))
    kept = [e for e in entries if start <= e.ts <= end and filters.keep(e)]
    return sorted(kept, key=lambda e: (e.ts, SEVERITIES.index(e.severity) * -1), reverse=True)
