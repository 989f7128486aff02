"""`hulk-ops report ...`: what the pages show, for reviews and scripts (JSON lines with --json, else a table)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypedDict

import orjson

from hulk_ops.core.config import Config

EXIT_OK, EXIT_FAILED = 0, 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             config_arg: Callable[[argparse.ArgumentParser], None],
             load: Callable[[argparse.Namespace], Config]) -> None:
    """`load` reads --config the way every command does (no config given: a usage error, exit 2)."""
    report = sub.add_parser("report", help="reports for reviews and scripts (read from the store)")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    radar = report_sub.add_parser("radar", help="the technology radar: rings, live versions, end of life, "
                                                "30-day fitness, cost and migration readiness per component")
    config_arg(radar)
    radar.add_argument("--json", action="store_true", help="one JSON object per component")
    radar.set_defaults(func=cmd_report_radar, load=load)
    slo = report_sub.add_parser("slo", help="availability, error budget, burn rates and latency percentiles per "
                                            "target and per kind over a rolling window")
    config_arg(slo)
    slo.add_argument("--window", type=window_arg, default=30 * 86_400, metavar="N{m,h,d}",
                     help="rolling window ending now, e.g. 30d, 28d, 7d, 6h (default 30d)")
    slo.add_argument("--kind", help="only the targets of this kind")
    slo.add_argument("--target", help="only this target")
    slo.add_argument("--json", action="store_true", help="one JSON object per target, then one per kind")
    slo.set_defaults(func=cmd_report_slo, load=load)
    cost = report_sub.add_parser("cost", help="spend per UTC month (RunPod pods, serverless workers, Kubernetes "
                                              "namespaces) from the long-range summaries")
    config_arg(cost)
    cost.add_argument("--month", type=month_arg, default=None, metavar="YYYY-MM",
                      help="the UTC month (default: this one, to date)")
    cost.add_argument("--json", action="store_true", help="one JSON object")
    cost.set_defaults(func=cmd_report_cost, load=load)


def month_arg(text: str) -> int:
    """'2026-11' -> month index (year * 12 + month - 1); anything else is a usage error (argparse: exit 2)."""
    try:
        year, month = (int(p) for p in text.split("-"))
        if len(text) != 7 or not 1 <= month <= 12 or year < 1970:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid month {text!r}: YYYY-MM, e.g. 2026-11") from None
    return year * 12 + month - 1


def cmd_report_cost(args: argparse.Namespace) -> int:
    import time

    from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
    from hulk_ops.dashboard.readmodel.cost import month_cost

    config: Config = args.load(args)
    now = time.time()
    try:
        m = month_cost(ReadModel(config), args.month, now)
    except StoreUnavailable as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if m is None:
        print("hulk-ops: that month has not begun", file=sys.stderr)
        return 2
    total_usd, to_date = round(m.total_usd, 4), m.end < m.month_end
    by_source = {"runpod_pods": round(m.runpod_usd, 4), "serverless_workers": round(m.workers_usd, 4),
                 "kubernetes_namespaces": round(m.kubernetes_usd, 4)}
    if args.json:
        row = {"month": m.month, "total_usd": total_usd, "by_source": by_source, "complete": m.complete,
               "days_covered": m.days_covered, "days": m.days, "to_date": to_date}
        sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return EXIT_OK
    print(f"{m.month}: {_fmt(total_usd, '', '$')}"
          f"{' to date' if to_date else ''} ({m.days_covered} of {m.days} days with data"
          f"{'' if m.complete else ', incomplete'})")
    for source, usd in by_source.items():
        print(f"  {source.replace('_', ' '):24} {_fmt(usd, '', '$')}")
    return EXIT_OK


WINDOW_UNITS = {"m": 60, "h": 3_600, "d": 86_400}


def window_arg(text: str) -> float:
    """'30d' -> seconds; anything else is a usage error naming the accepted form (argparse: exit 2)."""
    unit = WINDOW_UNITS.get(text[-1:]) if text else None
    try:
        count = float(text[:-1]) if unit else -1.0
    except ValueError:
        count = -1.0
    if unit is None or not 0 < count * unit <= 400 * 86_400:
        raise argparse.ArgumentTypeError(f"invalid window {text!r}: a number and m, h or d, at most 400d (e.g. 30d)")
    return count * unit


def window_label(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def cmd_report_slo(args: argparse.Namespace) -> int:
    import time

    from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
    from hulk_ops.dashboard.readmodel.latency import burn_rates, fleet_latency, kind_budgets

    config: Config = args.load(args)
    if args.kind is not None and args.kind not in {t.kind for t in config.targets}:
        kinds = ", ".join(sorted({t.kind for t in config.targets})) or "none"
        print(f"hulk-ops: no target of kind {args.kind!r} in the config (kinds: {kinds})", file=sys.stderr)
        return 2
    if args.target is not None and args.target not in {t.name for t in config.targets}:
        print(f"hulk-ops: no target named {args.target!r} in the config", file=sys.stderr)
        return 2
    model = ReadModel(config)
    now = time.time()
    try:
        report = fleet_latency(model, args.window, args.kind, now=now)
        burns = burn_rates(model, args.kind, now=now)
    except StoreUnavailable as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_FAILED
    label = window_label(args.window)
    rows: list[SloRow] = [{
        "target": r.target, "kind": r.kind, "window": label, "window_start": report.start, "window_end": report.end,
        "samples": r.samples, "down": r.down, "availability_pct": r.availability,
        "objective_pct": r.slo.availability, "budget_remaining_pct": r.budget_left_pct,
        "burn_rate": burns.get(r.target, {}),
        "p50_ms": _num(r.p50), "p95_ms": _num(r.p95), "p99_ms": _num(r.p99),
        "p95_objective_ms": r.slo.latency_p95_ms,
    } for r in report.rows if args.target is None or r.target == args.target]
    budgets = kind_budgets(report.rows)
    kind_rows: list[KindSloRow] = [{
        "kind": k.kind, "window": label, "budget_remaining_pct": budgets.get(k.kind), "targets": k.targets,
        "samples": k.samples, "down": k.down,
        "availability_pct": k.availability, "p50_ms": _num(k.p50), "p95_ms": _num(k.p95),
        "p99_ms": _num(k.p99),
    } for k in report.kinds]
    if args.json:
        for row in [*rows, *(kind_rows if args.target is None else [])]:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return EXIT_OK
    head = ("target", "kind", "samples", "avail", "objective", "budget left", "burn 1h", "burn 6h", "burn 3d", "p95")
    lines: list[tuple[str, ...]] = [head]
    for r in sorted(rows, key=_budget_order):
        burn = r["burn_rate"]
        lines.append((r["target"], r["kind"], str(r["samples"]), _fmt(r["availability_pct"], "%"),
                      _fmt(r["objective_pct"], "%"), _fmt(r["budget_remaining_pct"], "%"),
                      *(_fmt(burn.get(w), "x") for w in ("1h", "6h", "3d")), _fmt(r["p95_ms"], " ms")))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    print("\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines))
    return EXIT_OK


class SloRow(TypedDict):
    """One target's line of `report slo --json`."""

    target: str
    kind: str
    window: str
    window_start: float
    window_end: float
    samples: int
    down: int
    availability_pct: float | None
    objective_pct: float
    budget_remaining_pct: float | None
    burn_rate: dict[str, float | None]  # by window: 1h, 6h, 3d
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p95_objective_ms: float | None


class KindSloRow(TypedDict):
    """One kind's line of `report slo --json` (after the targets')."""

    kind: str
    window: str
    budget_remaining_pct: float | None
    targets: int
    samples: int
    down: int
    availability_pct: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def _budget_order(row: SloRow) -> float:
    """Least budget left first; targets without samples last."""
    left = row["budget_remaining_pct"]
    return left if left is not None else 1e18


def _num(value: float) -> float | None:
    return None if value != value else round(value, 3)


def cmd_report_radar(args: argparse.Namespace) -> int:
    from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
    from hulk_ops.dashboard.readmodel.radar import RadarError, load_radar, radar_path, with_rings
    from hulk_ops.dashboard.readmodel.radar_review import review
    from hulk_ops.dashboard.rings import RingBook

    config: Config = args.load(args)
    try:
        radar = load_radar(radar_path(config))
    except RadarError as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return 2
    model = ReadModel(config)
    try:
        radar = with_rings(radar, model._call(RingBook(config, model.redis).in_force, radar))
        rows = [r.report() for r in review(model, radar, config)]
    except StoreUnavailable as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return EXIT_OK
    print(_table(rows))
    return EXIT_OK


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("component", "ring", "pinned", "live", "end of life", "avail 30d", "p95 30d", "$/month", "targets",
            "dependents")
    lines = [head]
    for r in rows:
        eol = ", ".join(f"{f['version']} {'PAST' if f['past'] else str(f['days_left']) + 'd'}" for f in r["eol_flags"])
        lines.append((r["name"], r["ring"], r["pinned"] or "-", ", ".join(v or "?" for v in r["live_versions"]) or "-",
                      eol or "-", _fmt(r["availability_30d_pct"], "%"), _fmt(r["p95_30d_ms"], " ms"),
                      _fmt(r["cost_month_usd"], "", "$"), str(len(r["targets"])), str(len(r["dependents"]))))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _fmt(value: float | None, unit: str, before: str = "") -> str:
    return "-" if value is None else f"{before}{value:,.2f}{unit}"
