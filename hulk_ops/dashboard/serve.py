"""`hulk-ops dashboard` runs this: a warm-up, then Streamlit's own `streamlit run` in the same process, then a
bounded, prompt exit.

Start: without a warm-up the first page a fresh dashboard process renders pays for everything at once:
importing pandas, pyarrow, Plotly's validators and the views, loading the config (the CLI already did: it is
handed over, not parsed again), parsing every target's newest result, summarising the settled hours of the
last day (`readmodel.rollup`) and the capacity trends (`readmodel.trends`), and Streamlit's full garbage
collection after every script run walking all of that (frozen here). `warm()` does that before the server
listens, in a thread joined for at most `WARM_TIMEOUT_S`: a large store keeps warming in the background while
the first pages are served. Nothing here may stop the dashboard from starting: a store that is down is
reported once and the pages say so themselves.

Stop: Streamlit stops its server and sessions within a few hundred ms of SIGTERM, but the process then waits
for a page script still running and finalizes every module the pages imported (pandas, plotly, numpy,
...): 1-1.5 s more on a busy 2-core machine. After Streamlit returns, this waits at most `SCRIPT_GRACE_S`
for page scripts to finish (a guarded action under way writes its audit outcome), then exits without the
interpreter teardown. Measured here: SIGTERM to exit 0.3 s with an idle session connected.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hulk_ops.core.config import Config

APP = Path(__file__).with_name("app.py")
SERVER_APP = Path(__file__).with_name("server_app.py")  # app.py plus the session cookie routes (st.App)
SCRIPT_GRACE_S = 0.8
WARM_TIMEOUT_S = 30.0
log = logging.getLogger("hulk_ops.dashboard")
# (option, value) pinned on the command line; tests/integration/test_web_security.py checks they hold
SECURITY_FLAGS = (("server.enableXsrfProtection", "true"), ("server.enableCORS", "true"))


def streamlit_args(port: int, host: str) -> list[str]:
    """`streamlit run` arguments after "run": the app and the server options (security settings as flags,
    which beat every config file and variable)."""
    args = [
        str(SERVER_APP),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        # no source watching: an ops console does not hot-reload, and a file changed under a running server
        # made Streamlit drop modules from sys.modules while other sessions imported them (KeyError seen in
        # bench/soak.py when the checkout changed during a run)
        "--server.fileWatcherType", "none",
    ]
    for option, value in SECURITY_FLAGS:
        args += [f"--{option}", value]
    return args


def warm(config: Config | None = None) -> dict[str, float]:
    """Import what pages use and fill the per-process caches; returns seconds per step (for the log and
    the benchmark). Each step is independent: a failure is recorded as -1 and the next step runs."""
    timings: dict[str, float] = {}

    def step(name: str, fn: Any) -> None:
        started = time.perf_counter()
        try:
            fn()
            timings[name] = time.perf_counter() - started
        except Exception as exc:  # a warm-up must never stop the server
            timings[name] = -1.0
            log.warning("dashboard warm-up: %s failed: %s: %s", name, type(exc).__name__, exc)

    step("imports", _imports)
    from hulk_ops.dashboard import context

    if config is not None:
        context.preload(config)
    step("config", context.config)
    step("read model", _read_model)
    step("long range", _long_range)
    step("radar rings", _radar_rings)
    # Streamlit runs a full gc.collect() after every script run (runner.postScriptGC): over the ~450,000
    # objects of the imported libraries and the caches that takes ~0.2 s of CPU holding the GIL, per page
    # view and per fragment refresh. What exists now lives as long as the process: move it out of the
    # collector's sight, so each collection only walks what later runs allocate.
    gc.freeze()
    return timings


def _imports() -> None:
    import importlib

    import pandas as pd
    import plotly.tools
    from streamlit import dataframe_util
    from streamlit.web import bootstrap  # noqa: F401  (the server's own modules, before the freeze)

    from hulk_ops.dashboard import nav

    for _title, _icon, module in nav.PAGES.values():
        importlib.import_module(module)
    # Plotly builds a validator class per trace type on first use (what st.plotly_chart validates with)
    for trace in ({"type": "scatter", "x": [0, 1], "y": [0, 1], "fill": "tonexty"}, {"type": "bar", "x": [0],
                  "y": [1], "marker": {"color": [0], "colorscale": [[0, "#000"], [1, "#fff"]]}},
                  {"type": "scatterpolar", "theta": [0], "r": [1], "mode": "markers+text"}):
        plotly.tools.return_figure_from_figure_or_data({"data": [trace], "layout": {"xaxis": {"type": "date"}}}, True)
    dataframe_util.convert_anything_to_arrow_bytes(pd.DataFrame({"a": [1.0], "b": ["x"]}))


def _read_model() -> None:
    """Every page's read once over its longest window: parses the newest results and builds the settled-hour
    summaries (latency, availability) and trend sums (capacity) they reuse."""
    from hulk_ops.dashboard import context
    from hulk_ops.dashboard.readmodel.capacity import capacity_report
    from hulk_ops.dashboard.readmodel.cost import cost_report
    from hulk_ops.dashboard.readmodel.latency import fleet_latency

    model = context.read_model()
    model.overview()
    for window in (86400.0, 21600.0):
        fleet_latency(model, window)
        capacity_report(model, window)
    cost_report(model, 86400.0)


def _long_range() -> None:
    """The day sums the 7- and 30-day windows read from the long-range tier (kept CACHE_S, then re-read)."""
    from hulk_ops.dashboard import context
    from hulk_ops.dashboard.readmodel.latency import fleet_latency

    model = context.read_model()
    for days in (30, 7):
        fleet_latency(model, days * 86_400.0)


def _radar_rings() -> None:
    """Record the ring moves radar.yaml made since a dashboard last started (who: radar.yaml)."""
    from hulk_ops.dashboard import context
    from hulk_ops.dashboard.readmodel.radar import load_radar, radar_path
    from hulk_ops.dashboard.rings import RingBook

    config = context.config()
    for move in RingBook(config, context.read_model().redis).sync_file(load_radar(radar_path(config))):
        log.info("radar ring move from radar.yaml: %s %s -> %s", move.component, move.previous, move.ring)


def run(config: Config, config_path: str, port: int, host: str, watch_config: bool = False) -> int:
    """`hulk-ops dashboard`: warm up (bounded), then serve in this process until Streamlit stops."""
    os.environ["HULK_OPS_CONFIG"] = str(Path(config_path).resolve())
    root = str(APP.parents[2])  # the directory holding hulk_ops, importable by the script Streamlit runs
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    result: dict[str, float] = {}
    worker = threading.Thread(target=lambda: result.update(warm(config)), name="dashboard-warm-up", daemon=True)
    worker.start()
    worker.join(WARM_TIMEOUT_S)
    print(f"hulk-ops dashboard: warm-up {'done' if not worker.is_alive() else 'continues in the background'} "
          f"after {time.perf_counter() - started:.1f} s "
          + " ".join(f"{k}={v:.2f}s" for k, v in result.items()), file=sys.stderr, flush=True)
    _reload_on_sighup()
    if watch_config:
        threading.Thread(target=_watch, args=(Path(config_path).resolve(),), name="config-watch", daemon=True).start()
    return main(streamlit_args(port, host))


def _reload_on_sighup() -> None:
    """SIGHUP re-validates the config (in a thread: the handler runs on the main thread, which serves)."""
    from hulk_ops.dashboard import context

    def handler(_sig: int, _frame: Any) -> None:
        threading.Thread(target=context.reload_config, name="config-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, handler)


def _watch(path: Path) -> None:
    """Reload when the config file changes (its directory is watched: editors and ConfigMaps replace files)."""
    import watchfiles

    from hulk_ops.dashboard import context

    for changes in watchfiles.watch(path.parent, debounce=300, recursive=False):
        if any(Path(p).name in (path.name, "..data") for _c, p in changes):
            context.reload_config()


def _after_stop(_sig: int, _frame: Any) -> None:
    """The signal uvicorn re-raises once it has stopped: main() then exits. Before the server has taken the
    signals over (no Streamlit runtime yet) it stops the start-up instead."""
    from streamlit import runtime

    if not runtime.exists():
        raise SystemExit(0)


def main(argv: list[str]) -> int:
    """`streamlit run <argv>`, then the prompt exit (also `python -m dashboard.serve APP --server.port ...`)."""
    from streamlit.web import cli

    code = 0
    # uvicorn (serving the st.App) stops gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handler it found: answered here, so the bounded wait and the prompt exit below still run
    signal.signal(signal.SIGTERM, _after_stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _after_stop)
    try:
        cli.main(["run", *argv], prog_name="streamlit", standalone_mode=False)
    except SystemExit as exc:  # click or Streamlit exiting on a bad option / port in use
        code = exc.code if isinstance(exc.code, int) else 1
    deadline = time.monotonic() + SCRIPT_GRACE_S
    for thread in threading.enumerate():  # Streamlit asked them to stop; idle pool workers are not waited for
        if thread.name.startswith("ScriptRunner"):
            thread.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
