"""Opt-in heap statistics from inside a hulk-ops process, for `bench/soak.py`.

With `HULK_OPS_HEAP_STATS=<folder>` set, the collector and the dashboard each start one daemon thread that
appends a JSON line every `HULK_OPS_HEAP_STATS_S` seconds (default 10) to `<folder>/<component>-<pid>.jsonl`:

    t               unix time
    traced_bytes    bytes Python allocated since the sampler started and still holds (tracemalloc, started
                    here with one frame unless already tracing: everything the process builds after its
                    imports, i.e. results, caches, sessions, connections; PYTHONTRACEMALLOC=1 would also
                    count the imports but makes start-up ~3x slower)
    blocks          sys.getallocatedblocks(): memory blocks the interpreter holds, imports included
    gc_objects      objects tracked by the garbage collector
    rss_bytes       resident set size (psutil)
    top             with HULK_OPS_HEAP_STATS_TOP=N: the N source lines holding the most traced memory,
                    [["file:line", bytes, blocks], ...] (a snapshot per sample: costs a second on a big heap)

Without the variable nothing starts and nothing is imported beyond this module.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ENV = "HULK_OPS_HEAP_STATS"
ENV_INTERVAL = "HULK_OPS_HEAP_STATS_S"
ENV_TOP = "HULK_OPS_HEAP_STATS_TOP"
_lock = threading.Lock()


def start(component: str) -> Path | None:
    """Start the sampler once per process and component (a no-op without HULK_OPS_HEAP_STATS)."""
    folder = os.environ.get(ENV)
    if not folder:
        return None
    name = f"heapstats-{component}"
    with _lock:
        # by thread name, not a module global: Streamlit re-imports a module whose file changed
        if any(t.name == name for t in threading.enumerate()):
            return None
        if not tracemalloc.is_tracing():
            tracemalloc.start(1)
        path = Path(folder) / f"{component}-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        interval = float(os.environ.get(ENV_INTERVAL) or 10)
        threading.Thread(target=_loop, args=(path, interval), name=name, daemon=True).start()
    return path


def sample(top: int = 0) -> dict[str, object]:
    import psutil

    row: dict[str, object] = {
        "t": time.time(),
        "traced_bytes": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
        "blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "rss_bytes": psutil.Process().memory_info().rss,
    }
    if top and tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")])
        row["top"] = [[f"{s.traceback[0].filename}:{s.traceback[0].lineno}", s.size, s.count]
                      for s in snapshot.statistics("lineno")[:top]]
    return row


def _loop(path: Path, interval: float) -> None:
    top = int(os.environ.get(ENV_TOP) or 0)
    while True:
        line = json.dumps(sample(top))
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
        time.sleep(interval)
