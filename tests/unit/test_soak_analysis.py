"""bench/soak.py's arithmetic (growth, error lines, heap files) and the in-process heap sampler it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.soak import error_lines, growth, heap_rows, heap_series, is_error


def test_growth_compares_medians_of_the_first_and_last_samples() -> None:
    assert growth([100, 300, 100, 110, 130, 110]) == {"samples": 6, "start": 100, "end": 110, "growth": 10,
                                                      "growth_pct": 10.0}
    assert growth([5])["growth_pct"] is None


def test_error_lines_are_read_by_level_and_only_from_this_run(tmp_path: Path) -> None:
    log = tmp_path / "collector.log"
    earlier = '{"event": "x", "level": "error"}\n'
    log.write_text(earlier + "\n".join([
        '{"event": "state_change", "error": "connection refused", "level": "info"}',
        '{"event": "audit_outcome_lost", "level": "error"}',
        "2026-11-24 05:38:49.115 WARNING streamlit.runtime: an error word in a warning",
        "2026-11-24 05:38:49.115 ERROR streamlit.runtime: boom",
        "Traceback (most recent call last):",
    ]) + "\n", encoding="utf-8")
    found = error_lines(log, len(earlier))
    assert len(found) == 3 and "audit_outcome_lost" in found[0] and "boom" in found[1]
    assert not is_error('{"level": "warning", "event": "ERROR in text"}')


def test_the_heap_sampler_writes_lines_the_soak_reads(tmp_path: Path) -> None:
    code = ("import time; from bench import heapstats; heapstats.start('collector'); heapstats.start('collector');"
            "keep = [bytearray(1000) for _ in range(2000)]; time.sleep(3)")
    env = dict(os.environ, HULK_OPS_HEAP_STATS=str(tmp_path), HULK_OPS_HEAP_STATS_S="0.2")
    since = time.time()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.glob("collector-*.jsonl")  # started once
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) >= 2 and all(r["rss_bytes"] > 0 and r["blocks"] > 0 for r in rows)
    assert rows[-1]["traced_bytes"] > 2_000_000  # the 2 MB it keeps
    pid = int(path.stem.split("-")[1])
    traced, blocks = heap_series(heap_rows(tmp_path, "collector", pid, since))
    assert len(traced) == len(rows) == len(blocks)


def test_without_the_variable_nothing_starts() -> None:
    code = "import threading, tracemalloc; from bench import heapstats; " \
           "print(heapstats.start('dashboard'), threading.active_count(), tracemalloc.is_tracing())"
    env = {k: v for k, v in os.environ.items() if k != "HULK_OPS_HEAP_STATS"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["None", "1", "False"], proc.stderr


def test_top_growth_names_the_sites_that_grew_most() -> None:
    from bench.soak import top_growth

    rows = [{"t": 1, "top": [["a.py:1", 100, 1], ["b.py:2", 50, 1]]},
            {"t": 2, "top": [["b.py:2", 500, 9], ["a.py:1", 110, 1], ["c.py:3", 70, 2]]}]
    assert top_growth(rows) == [["b.py:2", 50, 500, 450], ["c.py:3", 0, 70, 70], ["a.py:1", 100, 110, 10]]
    assert top_growth(rows[:1]) == []


def test_type_growth_names_the_types_whose_object_count_grew() -> None:
    from bench.soak import type_growth

    rows = [{"t": 1, "types": [["builtins.dict", 100], ["x.Conn", 2]]},
            {"t": 2, "types": [["x.Conn", 40], ["builtins.dict", 90], ["y.New", 3]]}]
    assert type_growth(rows) == [["x.Conn", 2, 40, 38], ["y.New", 0, 3, 3]]


def test_a_sample_counts_what_is_kept_not_garbage_waiting_for_the_collector(tmp_path: Path) -> None:
    """Cyclic garbage is collected before each sample; types and call paths are recorded with TOP / FRAMES."""
    code = ("import gc, json, time; from bench import heapstats\n"
            "class Kept: pass\n"
            "class Cycle:\n"
            "    def __init__(self): self.me = self; self.pad = bytearray(10_000)\n"
            "gc.disable(); path = heapstats.start('collector')\n"
            "def keep(): return [Kept() for _ in range(5000)]\n"
            "kept = keep(); [Cycle() for _ in range(3000)]; since = time.time()\n"
            "def sampled(): return path.exists() and [r for r in map(json.loads, open(path)) if r['t'] > since]\n"
            "while not sampled() and time.time() < since + 30:\n"
            "    time.sleep(0.1)\n")
    env = dict(os.environ, HULK_OPS_HEAP_STATS=str(tmp_path), HULK_OPS_HEAP_STATS_S="0.3",
               HULK_OPS_HEAP_STATS_TOP="5", HULK_OPS_HEAP_STATS_FRAMES="4")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.glob("collector-*.jsonl")
    last = json.loads(path.read_text().splitlines()[-1])  # a sample taken after the objects were made
    assert last["traced_bytes"] < 10_000_000  # the 30 MB of unreachable cycles are not counted
    assert dict(map(tuple, last["types"]))["__main__.Kept"] == 5000
    site = next(site for site, _size, _count in last["top"] if "<string>:6" in site)
    assert " < " in site and site.index("<string>:6") < site.index("<string>:7")  # innermost frame first
