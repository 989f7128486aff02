"""`hulk-ops action ...`, `hulk-ops audit list` and `hulk-ops user add`: the guard from a terminal.

Every action command takes `(--dry-run | --confirm NAME)` where NAME is the object acted on (the
stream, the deployment, the pod; for launch-gpu and run-job the RunPod target) and authenticates by
`HULK_OPS_TOKEN`. Exit codes: 0 done or dry-run shown, 1 refused or failed (refusals are audited),
2 bad input, 3 waiting for an admin's approval (nothing done yet).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from hulk_ops.actions.errors import BadRequest
from hulk_ops.core.action_config import ROLES
from hulk_ops.core.config import Config, load_config

if TYPE_CHECKING:
    from hulk_ops.actions.audit import AuditRecord
    from hulk_ops.actions.model import ActionRequest, ActionResult, Principal

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    action = sub.add_parser("action", help="guarded actions (dry-run, confirm, audit)")
    action_sub = action.add_subparsers(dest="action_command", required=True, metavar="ACTION")
    for name, helptext, add_args in COMMANDS:
        cmd = action_sub.add_parser(name, help=helptext)
        config_arg(cmd)
        add_args(cmd)
        mode = cmd.add_mutually_exclusive_group(required=True)
        mode.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
        mode.add_argument("--confirm", metavar="NAME", help="execute; NAME must be the object acted on")
        cmd.add_argument("--idempotency-key", metavar="KEY", help="a retry with the same key executes once")
        cmd.add_argument("--json", action="store_true", help="print the result as JSON")
        cmd.set_defaults(func=cmd_action, build=name)
    for name, helptext in (("approve", "approve a waiting production request (admins)"),
                           ("reject", "reject a waiting request (admins, or the requester)")):
        cmd = action_sub.add_parser(name, help=helptext)
        config_arg(cmd)
        cmd.add_argument("request_id", metavar="REQUEST_ID")
        cmd.add_argument("--reason", default="")
        cmd.add_argument("--json", action="store_true")
        cmd.set_defaults(func=cmd_decide, decision=name)
    pending = action_sub.add_parser("pending", help="requests waiting for approval")
    config_arg(pending)
    pending.add_argument("--json", action="store_true")
    pending.set_defaults(func=cmd_pending)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    listing = audit_sub.add_parser("list", help="print the audit log, newest first")
    config_arg(listing)
    for flag in ("--user", "--action", "--target", "--outcome"):
        listing.add_argument(flag)
    listing.add_argument("--since", type=datetime.fromisoformat, help="ISO time, e.g. 2025-01-31T08:00+00:00")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_audit_list)

    user = sub.add_parser("user", help="local users")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="SUBCOMMAND")
    add = user_sub.add_parser("add", help="add a local user to the config file and print a new API token once")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--config", metavar="FILE", required=True)
    add.add_argument("--password-stdin", action="store_true", help="also set a dashboard password (read stdin)")
    add.set_defaults(func=cmd_user_add)


def _purge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--subject")
    p.add_argument("--keep", type=int)


def _scale_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--deployment", required=True)
    p.add_argument("--replicas", type=int, required=True)


def _restart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--deployment", required=True)


def _launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--gpu-type", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--image", required=True)
    p.add_argument("--max-hours", type=float, required=True)
    p.add_argument("--name")
    p.add_argument("--cloud-type", default="ALL", choices=["ALL", "SECURE", "COMMUNITY"])
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")


def _job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--input", default="{}", help="the job input as JSON")
    p.add_argument("--max-hours", type=float, default=1.0)


def _workers_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--min", type=int, required=True, dest="min_workers")
    p.add_argument("--max", type=int, required=True, dest="max_workers")


def _pod_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True)
    p.add_argument("--pod", required=True)


COMMANDS = [
    ("purge-stream", "purge a NATS JetStream stream (whole, --subject, --keep N)", _purge_args),
    ("scale", "scale a Kubernetes deployment within its configured bounds", _scale_args),
    ("restart", "rolling restart of a Kubernetes deployment (as kubectl rollout restart)", _restart_args),
    ("launch-gpu", "launch a RunPod GPU pod within the budget cap", _launch_args),
    ("run-job", "run a job on a RunPod serverless endpoint", _job_args),
    ("endpoint-workers", "set a RunPod serverless endpoint's worker limits within its configured bounds",
     _workers_args),
    ("stop-pod", "stop a RunPod pod", _pod_args),
    ("terminate-pod", "terminate a RunPod pod (its disk is gone)", _pod_args),
]


def build_request(args: argparse.Namespace) -> ActionRequest:
    from hulk_ops.actions.model import parse_request  # the request models are built only by commands that act

    data: dict[str, Any] = {"target": args.target}
    if args.build == "purge-stream":
        data |= {"action": "purge_stream", "stream": args.stream, "subject": args.subject, "keep": args.keep}
    elif args.build == "scale":
        data |= {"action": "scale", "namespace": args.namespace, "deployment": args.deployment,
                 "replicas": args.replicas}
    elif args.build == "restart":
        data |= {"action": "restart", "namespace": args.namespace, "deployment": args.deployment}
    elif args.build == "launch-gpu":
        env = dict(_pair(item) for item in args.env)
        data |= {"action": "launch_gpu", "gpu_type": args.gpu_type, "count": args.count, "image": args.image,
                 "max_hours": args.max_hours, "name": args.name, "cloud_type": args.cloud_type, "env": env}
    elif args.build == "run-job":
        try:
            job_input = orjson.loads(args.input)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"--input is not JSON: {exc}") from None
        data |= {"action": "run_job", "endpoint": args.endpoint, "input": job_input, "max_hours": args.max_hours}
    elif args.build == "endpoint-workers":
        data |= {"action": "endpoint_workers", "endpoint": args.endpoint, "min_workers": args.min_workers,
                 "max_workers": args.max_workers}
    else:
        data |= {"action": args.build.replace("-", "_"), "pod_id": args.pod}
    return parse_request({k: v for k, v in data.items() if v is not None})


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise BadRequest(f"--env {item!r}: expected KEY=VALUE")
    return key, value


def _setup(args: argparse.Namespace) -> Config:
    if not args.config:
        raise BadRequest("no config: pass --config FILE or set HULK_OPS_CONFIG")
    return load_config(args.config)


def _principal(config: Config) -> Principal:
    from hulk_ops.actions.identity import TOKEN_ENV, principal_from_token

    return principal_from_token(config.auth, os.environ.get(TOKEN_ENV))


def cmd_action(args: argparse.Namespace) -> int:
    from hulk_ops.actions.guard import build_guard
    from hulk_ops.actions.identity import AuthError

    config = _setup(args)
    request = build_request(args)
    guard = build_guard(config)
    try:
        principal = _principal(config)
    except AuthError as exc:
        from hulk_ops.actions.model import Principal

        unauthenticated = Principal(name="(unauthenticated)", roles=(), via="cli")
        result = asyncio.run(guard.refuse(unauthenticated, request, str(exc)))
        return _report(result, args.json)
    if args.dry_run:
        result = asyncio.run(guard.dry_run(principal, request))
    else:
        result = asyncio.run(guard.submit(principal, request, args.confirm, args.idempotency_key))
    return _report(result, args.json)


def cmd_decide(args: argparse.Namespace) -> int:
    from hulk_ops.actions.audit import AuditUnavailable
    from hulk_ops.actions.guard import build_guard
    from hulk_ops.actions.identity import AuthError

    config = _setup(args)
    guard = build_guard(config)
    try:
        principal = _principal(config)
    except AuthError as exc:
        print(f"hulk-ops: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        if args.decision == "approve":
            result = asyncio.run(guard.approve(principal, args.request_id))
        else:
            result = asyncio.run(guard.reject(principal, args.request_id, args.reason))
    except AuditUnavailable as exc:
        print(f"hulk-ops: refused: {exc}; nothing was executed", file=sys.stderr)
        return EXIT_REFUSED
    return _report(result, args.json)


def cmd_pending(args: argparse.Namespace) -> int:
    from hulk_ops.actions.audit import AuditUnavailable
    from hulk_ops.actions.guard import build_guard

    guard = build_guard(_setup(args))
    try:
        waiting = asyncio.run(guard.pending())
    except AuditUnavailable as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for item in waiting:
        row = record_dict(item.record) | {"expired": item.expired}
        if args.json:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        else:
            state = "EXPIRED" if item.expired else f"until {row['expires_at']}"
            print(f"{row['request_id']}  {row['username']}  {row['action']} {row['target']}/{row['object']}  {state}")
    if not waiting and not args.json:
        print("no request is waiting for approval")
    return EXIT_OK


def cmd_audit_list(args: argparse.Namespace) -> int:
    from hulk_ops.actions.audit import AuditFilter, AuditUnavailable
    from hulk_ops.actions.guard import build_guard

    guard = build_guard(_setup(args))
    flt = AuditFilter(username=args.user, action=args.action, target=args.target, outcome=args.outcome,
                      since=args.since, limit=args.limit)
    try:
        records = asyncio.run(guard.history(flt))
    except AuditUnavailable as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        out = sys.stdout.buffer
        for record in records:
            out.write(orjson.dumps(record_dict(record)) + b"\n")
        out.flush()
        return EXIT_OK
    print(f"{'ID':>6}  {'TIME (UTC)':19}  {'USER':12}  {'ACTION':13}  {'TARGET/OBJECT':30}  {'OUTCOME':16}  DETAIL")
    for r in records:
        detail = r.error or (r.dry_run or {}).get("summary", "")
        at = r.at.strftime("%Y-%m-%d %H:%M:%S") if r.at else ""
        print(f"{r.id:>6}  {at:19}  {r.username[:12]:12}  {r.action:13}  {f'{r.target}/{r.object}'[:30]:30}  "
              f"{r.outcome:16}  {detail[:100]}")
    return EXIT_OK


def cmd_user_add(args: argparse.Namespace) -> int:
    from hulk_ops.actions.identity import TOKEN_ENV
    from hulk_ops.actions.useradd import EditError, add_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
        if len(password) < 8:
            raise BadRequest("the password must have at least 8 characters")
    try:
        token = add_user(args.config, args.name, args.role, password)
    except EditError as exc:
        print(f"hulk-ops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"added {args.role} {args.name!r} to {args.config}", file=sys.stderr)
    print(f"API token (shown once; only its hash is stored; use it as {TOKEN_ENV}):", file=sys.stderr)
    print(token)
    return EXIT_OK


def record_dict(record: AuditRecord) -> dict[str, Any]:
    data = dict(record.__dict__)
    for key in ("at", "expires_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


def _report(result: ActionResult, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(orjson.dumps(result.model_dump(mode="json")).decode() + "\n")
    else:
        print(render(result))
    if result.status in ("refused", "failed"):
        return EXIT_REFUSED
    return EXIT_WAITING if result.status == "pending_approval" else EXIT_OK


def render(result: ActionResult) -> str:
    lines = [f"{result.status.upper()}: {result.message}"]
    p = result.preview
    if p is not None:
        if p.before:
            lines.append(f"  before:   {_short(p.before)}")
        if p.expected:
            lines.append(f"  expected: {_short(p.expected)}")
        if p.cost_usd_per_hour_delta is not None:
            lines.append(f"  cost:     {p.cost_usd_per_hour_delta:+.4f} USD/h")
        if p.cost_usd_max is not None:
            lines.append(f"  cost:     at most {p.cost_usd_max:.2f} USD")
        lines.extend(f"  impact:   {line}" for line in p.blast_radius)
    if result.after is not None:
        lines.append(f"  after:    {_short(result.after)}")
    lines.extend(f"  warning:  {w}" for w in result.warnings)
    lines.append(f"  request {result.request_id} · target {result.target} · object {result.object_name}"
                 + (f" · approved by {result.approver}" if result.approver else ""))
    if result.status == "dry_run":
        lines.append(f"  to execute: repeat with --confirm {result.object_name}")
    return "\n".join(lines)


def _short(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()[:300]
