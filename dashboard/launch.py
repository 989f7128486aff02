"""`hulk-ops dashboard`: replace this process with `streamlit run dashboard/app.py` (through
`dashboard/serve.py`, which makes it exit promptly on SIGTERM)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hulk_ops.config import Config

APP = Path(__file__).with_name("app.py")


def streamlit_argv(port: int, host: str) -> list[str]:
    return [
        sys.executable, "-m", "dashboard.serve", str(APP),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.enableXsrfProtection", "true",
        "--client.toolbarMode", "minimal",
    ]


def run_dashboard(config: Config, config_path: str, port: int = 8501, host: str = "127.0.0.1") -> int:
    env = dict(os.environ, HULK_OPS_CONFIG=str(Path(config_path).resolve()))
    # make the repository's packages importable by the script Streamlit runs
    root = str(APP.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    argv = streamlit_argv(port, host)
    os.execve(sys.executable, argv, env)
    return 0  # pragma: no cover - execve does not return
