"""`hulk-ops report ...`: what the pages show, for reviews and scripts (JSON lines with --json, else a table)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson

from hulk_ops.core.config import Config

EXIT_OK, EXIT_FAILED = 0, 1


def register(sub: Any, config_arg: Callable[[argparse.ArgumentParser], None],
             load: Callable[[argparse.Namespace], Config]) -> argparse.ArgumentParser:
    """`load` reads --config the way every command does (no config given: a usage error, exit 2)."""
    report = sub.add_parser("report", help="reports for reviews and scripts (read from the store)")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    radar = report_sub.add_parser("radar", help="the technology radar: rings, live versions, end of life, "
                                                "30-day fitness, cost and migration readiness per component")
    config_arg(radar)
    radar.add_argument("--json", action="store_true", help="one JSON object per component")
    radar.set_defaults(func=cmd_report_radar, load=load)
    return report_sub


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
