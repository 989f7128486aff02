"""`python -m hulk_ops.entrypoints.healthcheck`: exit 0 when this container's role answers (the image's HEALTHCHECK).

The role is read from PID 1's command line (the image runs `hulk-ops collect ...`, `hulk-ops api ...` or
`hulk-ops dashboard ...`, which serves Streamlit in the same process; `python -m dashboard.serve ...` and
`streamlit run ...` are recognised too): the collector's /healthz must say its event loop runs, the API
must serve its /healthz, the dashboard must answer Streamlit's /_stcore/health. `--pid`, `--url` for tests.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PORTS = {"collect": 9464, "dashboard": 8501, "api": 8502}


def _option(argv: Sequence[str], name: str) -> str | None:
    """The value of an option; the last one wins, as with argparse."""
    found = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def health_url(argv: Sequence[str]) -> str | None:
    """The URL that says whether the process started with `argv` is healthy (None: not a hulk-ops role)."""
    if "collect" in argv:
        port = _option(argv, "--metrics-port") or DEFAULT_PORTS["collect"]
        return f"http://127.0.0.1:{port}/healthz"  # 503 when the event loop is stuck (/metrics still answers)
    if "api" in argv:
        port = _option(argv, "--port") or DEFAULT_PORTS["api"]
        return f"http://127.0.0.1:{port}/healthz"
    if "dashboard" in argv:
        port = _option(argv, "--port") or DEFAULT_PORTS["dashboard"]
        return f"http://127.0.0.1:{port}/_stcore/health"
    if any(a.endswith("streamlit") or a == "hulk_ops.dashboard.serve" for a in argv):
        port = _option(argv, "--server.port") or DEFAULT_PORTS["dashboard"]
        return f"http://127.0.0.1:{port}/_stcore/health"
    return None


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def check(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
            return 200 <= resp.status < 300, f"{url}: HTTP {resp.status}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hulk_ops.entrypoints.healthcheck")
    parser.add_argument("--pid", type=int, default=1, help="process whose role is checked (default: 1)")
    parser.add_argument("--url", help="check this URL instead")
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        try:
            url = health_url(cmdline(args.pid))
        except OSError as exc:
            print(f"unhealthy: cannot read the command line of pid {args.pid}: {exc}", file=sys.stderr)
            return 1
    if url is None:
        print(f"unhealthy: pid {args.pid} is not `hulk-ops collect`, `hulk-ops api` or `hulk-ops dashboard`",
              file=sys.stderr)
        return 1
    ok, detail = check(url)
    print(("healthy: " if ok else "unhealthy: ") + detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
