"""`hulk-ops history export|import`: the raw history as JSON lines (the `hulk-ops probe --json` format)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hulk_ops.core.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             config_arg: Callable[[argparse.ArgumentParser], None],
             load: Callable[[argparse.Namespace], Config]) -> None:
    history = sub.add_parser("history", help="export or import the probe history (JSON lines)")
    history_sub = history.add_subparsers(dest="history_command", required=True, metavar="SUBCOMMAND")
    export = history_sub.add_parser("export", help="print the stored raw history as JSON lines")
    config_arg(export)
    export.add_argument("--target", action="append", metavar="NAME", help="only this target (repeatable)")
    export.add_argument("--since", type=iso_arg, metavar="ISO", help="from this time (default: as far back as kept)")
    export.add_argument("--until", type=iso_arg, metavar="ISO", help="up to this time (default: now)")
    export.set_defaults(func=cmd_export, load=load)
    imp = history_sub.add_parser("import", help="merge a JSON-lines history file into the store (idempotent)")
    config_arg(imp)
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(func=cmd_import, load=load)


def iso_arg(text: str) -> float:
    from hulk_ops.core.model import parse_iso

    try:
        parsed = parse_iso(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: ISO-8601, e.g. 2026-11-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: give the zone, e.g. Z for UTC")
    return parsed.timestamp()


def cmd_export(args: argparse.Namespace) -> int:
    from hulk_ops.collectors.history_io import export
    from hulk_ops.collectors.store import STORE_ERRORS

    config: Config = args.load(args)
    names = {t.name for t in config.targets}
    unknown = sorted(set(args.target or ()) - names)
    if unknown:
        print(f"hulk-ops: unknown target(s): {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    if args.since is not None and args.until is not None and args.since > args.until:
        print("hulk-ops: --since is after --until", file=sys.stderr)
        return EXIT_USAGE
    try:
        export(config, sys.stdout.buffer, args.target, args.since, args.until)
    except STORE_ERRORS as exc:
        print(f"hulk-ops: cannot read the store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.flush()
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from hulk_ops.collectors.history_io import ImportRefused, import_file, progress_printer
    from hulk_ops.collectors.store import STORE_ERRORS

    config: Config = args.load(args)
    path = Path(args.file)
    if not path.is_file():
        print(f"hulk-ops: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        stats = import_file(config, path, progress_printer())
    except ImportRefused as exc:
        print(f"hulk-ops: {exc} (nothing imported)", file=sys.stderr)
        return EXIT_USAGE
    except STORE_ERRORS as exc:
        print(f"hulk-ops: cannot write the store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(f"{path}: {stats.lines:,} lines: {stats.samples_new:,} new and {stats.samples_known:,} already stored in "
          f"the raw history ({config.store.retention_h:g} h), {stats.samples_old:,} older (summarised only); "
          f"{len(stats.hours):,} target-hours, {stats.hours_summarised:,} hour and {stats.days_summarised:,} day "
          f"summaries written")
    return EXIT_OK
