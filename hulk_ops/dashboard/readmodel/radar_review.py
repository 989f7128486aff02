"""What the radar knows beyond ring and version: 30-day fitness and migration readiness per component.

- **Backing targets**: the configured targets the component matches (kinds and name globs, as for versions).
- **Fitness over 30 days**, from the long-range tier's hour and day summaries (and the raw samples of the hours
  not summarised yet; `readmodel/longrange.py`): availability = samples not down / samples over all backing
  targets; p95 = the worst backing target's p95 (from the summaries' histograms, within ±3.1 %);
  incidents = times a backing target started failing (down or degraded) while none of its own `depends_on`
  targets was failing: it was the root cause (from the per-target event streams, which keep each target's
  newest 500 state changes); cost per month = the window's mean $/h x 730 h (the summarised periods' means
  weighted by the time their samples cover), from the RunPod targets' `cost_per_hr_total` and, for
  `matches.namespaces`, the Kubernetes namespaces' requests x `actions.prices`
  (None when nothing is attributed).
- **Readiness**: how many targets back it, which targets depend on them through `depends_on` (directly or
  further down: the blast radius of a migration), and which guarded actions touch its kinds.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from hulk_ops.core.config import Config
from hulk_ops.core.incidents import FAILING
from hulk_ops.core.model import STATUS_CODE
from hulk_ops.dashboard.readmodel.radar import Component, EolFlag, RadarEntry, RadarFile, eol_flags, radar_entries
from hulk_ops.dashboard.readmodel.store import Event, ReadModel

WINDOW_DAYS = 30
HOURS_PER_MONTH = 730.0


@dataclass(frozen=True, slots=True)
class WindowStats:
    samples: int
    down: int
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class Fitness:
    window_s: float
    samples: int
    availability_pct: float | None
    p95_ms: float | None
    root_incidents: int
    cost_month_usd: float | None


@dataclass(frozen=True, slots=True)
class Readiness:
    targets: tuple[str, ...]
    dependents: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ComponentReview:
    entry: RadarEntry
    flags: tuple[EolFlag, ...]
    fitness: Fitness
    readiness: Readiness

    def report(self) -> dict[str, object]:
        """One line of `hulk-ops report radar --json`."""
        c = self.entry.component
        return {
            "name": c.name, "quadrant": c.quadrant, "ring": c.ring, "pinned": c.pinned,
            "live_versions": {v or "": list(t) for v, t in sorted(self.entry.live.items())},
            "drift": self.entry.drift,
            "eol_flags": [{"version": f.version, "cycle": f.cycle, "eol": f.eol.isoformat(), "days_left": f.days_left,
                           "past": f.past, "targets": list(f.targets)} for f in self.flags],
            "fitness_window_h": round(self.fitness.window_s / 3600, 1),
            "samples_30d": self.fitness.samples,
            "availability_30d_pct": _round(self.fitness.availability_pct, 4),
            "p95_30d_ms": _round(self.fitness.p95_ms, 2),
            "root_incidents_30d": self.fitness.root_incidents,
            "cost_month_usd": _round(self.fitness.cost_month_usd, 2),
            "targets": list(self.readiness.targets),
            "dependents": list(self.readiness.dependents),
            "actions": list(self.readiness.actions),
            "alternatives": [a.model_dump() for a in c.alternatives],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def backing_targets(component: Component, config: Config) -> tuple[str, ...]:
    names = {t.name for t in config.targets if t.kind in component.matches.kinds}
    for glob in component.matches.targets:
        names.update(t.name for t in config.targets if fnmatch.fnmatchcase(t.name, glob))
    return tuple(sorted(names))


def dependents_of(targets: Iterable[str], depends_on: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every target that depends on one of `targets`, directly or through other targets."""
    users: dict[str, list[str]] = {}
    for name, deps in depends_on.items():
        for dep in deps:
            users.setdefault(dep, []).append(name)
    start = set(targets)
    seen: set[str] = set()
    todo = list(start)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in seen and user not in start:
                seen.add(user)
                todo.append(user)
    return tuple(sorted(seen))


def actions_for(kinds: Iterable[str]) -> tuple[str, ...]:
    from hulk_ops.actions.model import ActionRequest

    wanted = set(kinds)
    found: set[str] = set()
    todo = list(ActionRequest.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        field = cls.model_fields.get("action")
        if field is not None and isinstance(field.default, str) and wanted & set(cls.kinds):
            found.add(field.default)
    return tuple(sorted(found))


def readiness(component: Component, config: Config) -> Readiness:
    targets = backing_targets(component, config)
    kinds = set(component.matches.kinds) | {config.target(t).kind for t in targets}
    return Readiness(targets, dependents_of(targets, {t.name: t.depends_on for t in config.targets}),
                     actions_for(kinds))


def status_histories(model: ReadModel, names: Iterable[str], until: float) -> dict[str, list[tuple[float, str]]]:
    """Each target's state changes up to `until`, oldest first, as (when, status): one pipelined read."""
    wanted = sorted(set(names))
    pipe = model.redis.pipeline(transaction=False)
    for name in wanted:
        pipe.xrevrange(model.keys.target_events(name), "+", "-", 500)  # `at` (when it happened) is filtered below
    raw = model._call(pipe.execute)
    out = {}
    for name, entries in zip(wanted, raw, strict=True):
        changes = []
        for event_id, fields in entries:
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            if decoded.get("type") == "state_change":
                event = Event(event_id.decode(), int(event_id.split(b"-")[0]) / 1000.0, decoded)
                if event.at <= until:
                    changes.append((event.at, decoded.get("current", "")))
        out[name] = sorted(changes)
    return out


def root_incidents(model: ReadModel, targets: Sequence[str], depends_on: Mapping[str, Sequence[str]],
                   start: float, end: float) -> int:
    """How often a target began failing while none of its dependencies was failing, within [start, end]."""
    histories = status_histories(model, [*targets, *(d for t in targets for d in depends_on.get(t, ()))], end)

    def status_at(name: str, when: float) -> str:
        status = ""
        for at, current in histories.get(name, ()):
            if at > when:
                break
            status = current
        return status

    count = 0
    for name in targets:
        previous = ""
        for at, current in histories.get(name, ()):
            starts_failing = current in FAILING and previous not in FAILING
            previous = current
            if not starts_failing or not start <= at <= end:
                continue
            if not any(status_at(dep, at) in FAILING for dep in depends_on.get(name, ())):
                count += 1
    return count


def monthly_cost(model: ReadModel, component: Component, config: Config, targets: Sequence[str],
                 start: float, end: float) -> float | None:
    """Mean $/h over the window x 730 h, for the spend the cost views can attribute to this component."""
    rates: list[float] = []
    for name in targets:
        if config.target(name).kind == "runpod":
            rate = _mean(model, name, "cost_per_hr_total", start, end)
            if rate is not None:
                rates.append(rate)
    if component.matches.namespaces:
        prices = config.actions.prices
        per_unit = {"cpu_requests": prices.cpu_hour, "memory_requests_gib": prices.gib_hour,
                    "gpu_requests": prices.gpu_hour}
        for cluster in (t for t in config.targets if t.kind == "kubernetes"):
            for metric in model.tracked_metrics(cluster.name):
                parts = metric.split(".")
                if len(parts) != 3 or parts[0] != "ns" or parts[2] not in per_unit:
                    continue
                if not any(fnmatch.fnmatchcase(parts[1], g) for g in component.matches.namespaces):
                    continue
                mean = _mean(model, cluster.name, metric, start, end)
                price = per_unit[parts[2]]
                if mean is not None and price:
                    rates.append(mean * price)
    return sum(rates) * HOURS_PER_MONTH if rates else None


def _mean(model: ReadModel, target: str, metric: str, start: float, end: float) -> float | None:
    """Mean of a tracked metric over the window: its summarised periods' means weighted by the time their samples
    cover; the raw points when nothing is summarised yet (a store younger than an hour)."""
    from hulk_ops.dashboard.readmodel.longrange import metric_periods

    interval = config_interval(model, target)
    periods = metric_periods(model, [(target, metric)], start, end)[(target, metric)]
    weights = [min(1.0, p.samples * interval / p.length_s) * p.length_s for p in periods]
    if periods and sum(weights) > 0:
        return sum(w * p.stats.mean for w, p in zip(weights, periods, strict=True)) / sum(weights)
    values = model.metric_history(target, metric, start, end)["value"]
    return float(np.mean(values)) if len(values) else None


def config_interval(model: ReadModel, target: str) -> float:
    try:
        return model.config.target(target).interval_s
    except KeyError:
        return 60.0


def window_stats(model: ReadModel, targets: Sequence[str], start: float, end: float) -> dict[str, WindowStats]:
    from hulk_ops.collectors.rollups import hist_quantiles
    from hulk_ops.dashboard.readmodel.longrange import long_range

    totals = long_range(model).totals(list(targets), start, end)
    p95 = hist_quantiles(totals.hist, [0.95])[:, 0]
    out = {}
    for i, name in enumerate(targets):
        samples = int(totals.counts[i].sum())
        out[name] = WindowStats(samples, int(totals.counts[i, STATUS_CODE["down"]]),
                                float(p95[i]) if not np.isnan(p95[i]) else None)
    return out


def fitness(model: ReadModel, component: Component, config: Config, targets: Sequence[str], start: float,
            end: float, stats: Mapping[str, WindowStats]) -> Fitness:
    samples = sum(stats[t].samples for t in targets if t in stats)
    down = sum(stats[t].down for t in targets if t in stats)
    p95s = [stats[t].p95_ms for t in targets if t in stats and stats[t].p95_ms is not None]
    depends_on = {t.name: t.depends_on for t in config.targets}
    return Fitness(
        window_s=end - start,
        samples=samples,
        availability_pct=100.0 * (samples - down) / samples if samples else None,
        p95_ms=max(p95s) if p95s else None,  # type: ignore[type-var]
        root_incidents=root_incidents(model, targets, depends_on, start, end),
        cost_month_usd=monthly_cost(model, component, config, targets, start, end),
    )


def review(model: ReadModel, radar: RadarFile, config: Config, now: float | None = None,
           days: int = WINDOW_DAYS) -> list[ComponentReview]:
    now = time.time() if now is None else now
    start = now - days * 86_400
    entries = radar_entries(radar, model.target_views(now))
    today = datetime.fromtimestamp(now, UTC).date()
    flags = eol_flags(entries, today, config.radar.eol_warning_days)
    ready = {e.component.name: readiness(e.component, config) for e in entries}
    every = sorted({t for r in ready.values() for t in r.targets})
    stats = window_stats(model, every, start, now)
    out = []
    for entry in entries:
        r = ready[entry.component.name]
        out.append(ComponentReview(
            entry=entry,
            flags=tuple(f for f in flags if f.component == entry.component.name),
            fitness=fitness(model, entry.component, config, r.targets, start, now, stats),
            readiness=r,
        ))
    return out
