"""The `hulk-ops` command line. Exit codes: 0 fine, 1 something is not up / refused, 2 bad input."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

import orjson

from hulk_ops.actions.errors import BadRequest
from hulk_ops.core.config import Config, ConfigError, load_config
from hulk_ops.entrypoints import cli_actions, cli_history, cli_reports

EXIT_OK, EXIT_NOT_UP, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input that is not a config problem (unknown target name, ...): exit 2."""


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=os.environ.get("HULK_OPS_CONFIG"),
        help="YAML config file (default: $HULK_OPS_CONFIG)",
    )


def _load(args: argparse.Namespace) -> Config:
    if not args.config:
        raise UsageError("no config: pass --config FILE or set HULK_OPS_CONFIG")
    return load_config(args.config)


def cmd_config_check(args: argparse.Namespace) -> int:
    from hulk_ops.probes import registry

    config = load_config(args.file)
    kinds = sorted({t.kind for t in config.targets})
    print(f"{args.file}: OK, {len(config.targets)} targets ({', '.join(kinds) or 'none'})")
    for problem in registry.problems():  # plugins this config does not use: a warning, not a failure
        print(f"hulk-ops: warning: {problem}", file=sys.stderr)
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from hulk_ops.entrypoints.probe_once import probe_once, render_table

    config = _load(args)
    targets = config.targets
    if args.target:
        wanted = set(args.target)
        unknown = wanted - {t.name for t in targets}
        if unknown:
            raise UsageError(f"unknown target(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t.name in wanted]
    if not targets:
        raise UsageError(f"{config.source}: no targets to probe")
    _quiet_logs(config, {t.kind for t in targets})
    results = asyncio.run(probe_once(config, targets))
    if args.json:
        out = sys.stdout.buffer
        for result in results:
            out.write(orjson.dumps(result.public()) + b"\n")
        out.flush()
    else:
        print(render_table(results))
    return EXIT_OK if all(r.status == "up" for r in results) else EXIT_NOT_UP


def cmd_collect(args: argparse.Namespace) -> int:
    from hulk_ops.entrypoints import service
    from hulk_ops.entrypoints.service import run_collector
    from hulk_ops.observe import heap, logs
    from hulk_ops.probes import registry

    config = _load(args)
    registry.preload({t.kind for t in config.targets})
    logs.configure(args.log_level, secrets=config.secrets())
    heap.start("collector")  # only with HULK_OPS_HEAP_STATS set (bench/soak.py)
    _use_uvloop()
    port = None if args.metrics_port == 0 else args.metrics_port
    asyncio.run(run_collector(config, metrics_port=port, metrics_host=args.metrics_host,
                              watch_config=args.watch_config))
    if service.SIGNALLED_AT is not None:  # stopped by SIGTERM/SIGINT: everything is flushed and closed
        _exit_now(EXIT_OK)
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hulk_ops.dashboard.launch import CookieSecretMissing, run_dashboard

    config = _load(args)
    try:
        return run_dashboard(config, args.config, port=args.port, host=args.host, watch_config=args.watch_config)
    except CookieSecretMissing as exc:
        raise UsageError(str(exc)) from None


def cmd_api(args: argparse.Namespace) -> int:
    from hulk_ops.api.app import serve
    from hulk_ops.observe import logs

    config = _load(args)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port: {args.port} is not a TCP port (1-65535)")
    logs.configure(args.log_level, secrets=config.secrets())
    serve(config, host=args.host, port=args.port, log_level=args.log_level)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from sandbox.demo import run_demo

    return run_demo(port=args.port, workdir=args.workdir)


def _quiet_logs(config: Config, kinds: set[str]) -> None:
    """A terminal command prints its result; libraries' chatter goes nowhere below WARNING."""
    from hulk_ops.observe import logs
    from hulk_ops.probes import registry

    registry.preload(kinds)
    logs.configure("WARNING", secrets=config.secrets(), json=False)


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down: the collector has flushed its buffer, written its last
    heartbeat and closed its clients, /metrics and tracing; finalizing every imported module (numpy,
    grpc, the backends' clients) only adds 0.3-0.7 s on a busy 2-core machine to a stop that must take < 2 s."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hulk-ops", description="Ops console for the Hulk infrastructure layer")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate a config file and exit (0 valid, 2 invalid)")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_config_check)

    probe = sub.add_parser("probe", help="probe every target once and print the results")
    _config_arg(probe)
    probe.add_argument("--json", action="store_true", help="one JSON object per line (ProbeResult fields)")
    probe.add_argument("--target", action="append", metavar="NAME", help="only this target (repeatable)")
    probe.set_defaults(func=cmd_probe)

    collect = sub.add_parser("collect", help="run the collector until SIGTERM")
    _config_arg(collect)
    collect.add_argument("--metrics-port", type=int, default=9464, help="port of /metrics (0: off)")
    collect.add_argument("--metrics-host", default="127.0.0.1", help="address /metrics listens on")
    collect.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    collect.add_argument("--watch-config", action="store_true",
                         help="reload the config when its file changes (SIGHUP always reloads)")
    collect.set_defaults(func=cmd_collect)

    dash = sub.add_parser("dashboard", help="run the Streamlit dashboard")
    _config_arg(dash)
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--watch-config", action="store_true",
                      help="reload the config when its file changes (SIGHUP always reloads)")
    dash.set_defaults(func=cmd_dashboard)

    api = sub.add_parser("api", help="serve the read-only JSON API (targets, incidents, events) until SIGTERM")
    _config_arg(api)
    api.add_argument("--port", type=int, default=8502)
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    api.set_defaults(func=cmd_api)

    demo = sub.add_parser("demo", help="start a live sandbox (servers, simulators, collector, dashboard)")
    demo.add_argument("--port", type=int, default=8501)
    demo.add_argument("--workdir", default=None, help="where the demo keeps its files (default: .demo/)")
    demo.set_defaults(func=cmd_demo)

    cli_actions.register(sub, _config_arg)
    cli_reports.register(sub, _config_arg, _load)
    cli_history.register(sub, _config_arg, _load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"hulk-ops: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, BadRequest) as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
