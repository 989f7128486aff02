"""A stand-in benchmark module for tests/unit/test_bench_report.py: `run()` as bench.pages / bench.browser
have it, called by bench/isolate.py in a spawned process (so it must be importable by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def run(mode: str = "ok", marker: str = "", value: int = 0) -> dict:
    print(f"progress table from {os.getpid()}")  # the child's stdout goes to stderr
    if mode == "raise":
        raise SystemExit("page broke: boom")
    if mode == "sleep":
        try:
            time.sleep(120)
        finally:  # what bench.pages / bench.browser do on the way out: delete keys, stop servers
            Path(marker).write_text("cleaned up", encoding="utf-8")
    return {"pid": os.getpid(), "value": value, "config_env": os.environ.get("HULK_OPS_CONFIG")}
