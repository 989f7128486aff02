"""Opt-in heap statistics from inside a hulk-ops process, for `bench/soak.py`.

With `HULK_OPS_HEAP_STATS=<folder>` set, the collector and the dashboard each start one daemon thread that
appends a JSON line every `HULK_OPS_HEAP_STATS_S` seconds (default 10) to `<folder>/<component>-<pid>.jsonl`.
Each sample starts with a full garbage collection, so it counts what the process keeps, not garbage that is
merely waiting for the collector (without it, samples alternate with the collector's own full collections and
the growth measured depends on which side of one a sample fell):

    t               unix time
    traced_bytes    bytes Python allocated since the sampler started and still holds (tracemalloc, started
                    here with one frame unless already tracing: everything the process builds after its
                    imports, i.e. results, caches, sessions, connections; PYTHONTRACEMALLOC=1 would also
                    count the imports but makes start-up ~3x slower)
    blocks          sys.getallocatedblocks(): memory blocks the interpreter holds, imports included
    gc_objects      objects tracked by the garbage collector
    rss_bytes       resident set size (psutil)
    top             with HULK_OPS_HEAP_STATS_TOP=N: the N source lines holding the most traced memory,
                    [["file:line", bytes, blocks], ...] (a snapshot per sample: costs a second on a big heap),
                    and "types": the N types with the most objects tracked by the garbage collector,
                    [["module.Type", count], ...] (frozen objects, gc.freeze(), are not counted)

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
from collections import Counter
from pathlib import Path

ENV = "HULK_OPS_HEAP_STATS"
ENV_INTERVAL = "HULK_OPS_HEAP_STATS_S"
ENV_TOP = "HULK_OPS_HEAP_STATS_TOP"
ENV_FRAMES = "HULK_OPS_HEAP_STATS_FRAMES"
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
            tracemalloc.start(max(1, int(os.environ.get(ENV_FRAMES) or 1)))
        path = Path(folder) / f"{component}-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        interval = float(os.environ.get(ENV_INTERVAL) or 10)
        threading.Thread(target=_loop, args=(path, interval), name=name, daemon=True).start()
    return path


def sample(top: int = 0) -> dict[str, object]:
    import psutil

    gc.collect()
    objects = gc.get_objects()
    row: dict[str, object] = {
        "t": time.time(),
        "traced_bytes": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
        "blocks": sys.getallocatedblocks(),
        "gc_objects": len(objects),
        "rss_bytes": psutil.Process().memory_info().rss,
    }
    if top:  # before the snapshot: its traces are tuples the collector tracks
        counts = Counter(type(obj) for obj in objects)
        row["types"] = [[f"{kind.__module__}.{kind.__qualname__}", n] for kind, n in counts.most_common(top)]
    del objects  # a list of every object: not kept through the snapshot
    if top and tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")])
        # with HULK_OPS_HEAP_STATS_FRAMES > 1 a site is the whole call path, innermost frame first
        row["top"] = [[" < ".join(f"{f.filename}:{f.lineno}" for f in reversed(s.traceback)), s.size, s.count]
                      for s in snapshot.statistics("traceback" if tracemalloc.get_traceback_limit() > 1
                                                   else "lineno")[:top]]
    return row


def _loop(path: Path, interval: float) -> None:
    top = int(os.environ.get(ENV_TOP) or 0)
    while True:
        line = json.dumps(sample(top))
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
        time.sleep(interval)
