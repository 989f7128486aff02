"""`hulk-ops dashboard`: this process becomes the Streamlit server (`streamlit run dashboard/app.py`), warmed up
first and exiting promptly on SIGTERM (both in dashboard/serve.py), with the config the CLI already validated."""

from __future__ import annotations

from pathlib import Path

from hulk_ops.config import Config

APP = Path(__file__).with_name("app.py")


def run_dashboard(config: Config, config_path: str, port: int = 8501, host: str = "127.0.0.1") -> int:
    from dashboard import serve

    return serve.run(config, config_path, port, host)
