"""`python -m bench` (what `make bench` runs): every benchmark in bench/, into docs/benchmarks.md and .json.

    python -m bench [--quick] [--only probe,collector,store,pages,browser] [--with-scaling] [--no-write]
                    [--before REF]

Each benchmark is a function returning a dict of figures: `bench.store.run`, `bench.probe.run`,
`bench.collector.run` (and `bench.scaling.run` with `--with-scaling`: 10 replicas, slow) are called here.
The page benchmarks (`bench.pages.run`, `bench.browser.run`; also `python -m bench.pages` / `bench.browser`)
are called each in a fresh process (bench/isolate.py: multiprocessing, spawn) and their returned dicts
mapped to the report: they measure what a fresh dashboard process costs and change the process they run in
(bench.pages sets HULK_OPS_CONFIG, fills Streamlit's process-wide cache_resource config and read model and
the read model's caches, imports and warms the dashboard as a starting server does, wraps the views'
render(); bench.browser runs Playwright's sync API and starts servers), and a process bounds them by a
timeout. Their progress tables go to stderr. A benchmark that fails is reported as failed (with its
error) and the others still run. Figures and ratios come from the same run on the same machine; the load
average before and after is recorded, because absolute numbers move with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC, JSON = ROOT / "docs/benchmarks.md", ROOT / "docs/benchmarks.json"
NAMES = ("store", "probe", "collector", "pages", "browser", "rollups", "scaling")


def run_store(quick: bool) -> dict[str, Any]:
    from bench import store

    return store.run(targets=50 if quick else 200, hours=6 if quick else 24)


def run_probe(quick: bool) -> dict[str, Any]:
    from bench import probe

    def both() -> dict[str, Any]:
        figures = probe.run(quick)
        if not quick:  # the held-out size too: 2,000 Redis targets at 5 s (400 probes/s), blackbox at that rate
            figures["at_rate"] = probe.run(kinds=("redis",), rate=400, targets=2000, warmup=12.0)
        return figures

    return with_before(both)


def run_collector(quick: bool) -> dict[str, Any]:
    from bench import collector

    return with_before(lambda: collector.run(quick))


BEFORE: dict[str, str] = {}  # "src": a checkout of `--before REF`, "ref": REF


def with_before(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The figures of this checkout's collector; with `--before REF`, also those of REF's collector (run first, on
    the same targets, Python and libraries: bench/probe.py and bench/collector.py's HULK_BENCH_COLLECTOR_SRC)."""
    if not BEFORE:
        return run()
    os.environ["HULK_BENCH_COLLECTOR_SRC"] = BEFORE["src"]
    try:
        before = run()
    finally:
        del os.environ["HULK_BENCH_COLLECTOR_SRC"]
    figures = run()
    figures["before"] = {**before, "ref": BEFORE["ref"]}
    return figures


def checkout(ref: str, into: Path) -> Path:
    """`git archive REF` unpacked into `into` (a collector to compare with, as it was at REF)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"bench: --before {ref}: {archive.stderr.decode().strip() or 'git archive failed'}")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_rollups(quick: bool) -> dict[str, Any]:
    from bench import rollups

    return rollups.run(quick)


def run_scaling(quick: bool) -> dict[str, Any]:
    from bench import scaling

    args = argparse.Namespace(replicas=3 if quick else 10, targets=1000 if quick else 10_000,
                              interval=5.0 if quick else 10.0, ttl=3.0, handover=None, cycles=2 if quick else 3)
    return scaling.run(args)


# `python -m bench --quick` sizes, as the modules' own command-line options (also shown in the report)
PAGES_QUICK: dict[str, Any] = {"targets": 300, "hours": 6, "runs": 3}
BROWSER_QUICK: dict[str, Any] = {"targets": 300, "hours": 6, "runs": 2}
PAGES_TIMEOUT_S, BROWSER_TIMEOUT_S = 900.0, 1200.0


def _argv(sizes: dict[str, Any]) -> list[str]:
    """The `python -m bench.pages` / `bench.browser` options equivalent to run(**sizes)."""
    return [arg for key, value in sizes.items() for arg in (f"--{key}", str(value))]


def run_pages(quick: bool) -> dict[str, Any]:
    from bench.isolate import call_in_fresh_process

    sizes = PAGES_QUICK if quick else {}
    return pages_report(call_in_fresh_process("bench.pages", dict(sizes), PAGES_TIMEOUT_S), _argv(sizes))


def run_browser(quick: bool) -> dict[str, Any]:
    from bench.isolate import call_in_fresh_process

    sizes = BROWSER_QUICK if quick else {}
    return browser_report(call_in_fresh_process("bench.browser", dict(sizes), BROWSER_TIMEOUT_S),
                          _argv(sizes))


PAGE_FIELDS = ("cold_ms", "p50_ms", "p95_ms", "max_ms", "cpu_p50_ms", "cpu_p95_ms")


def pages_report(figures: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """The pages section's figures from `bench.pages.run()`'s dict (ms per page); the budget verdict is on the
    worst p95 of every page in the table. `run` keeps everything run() returned."""
    pages = {label: {key: float(p[key]) for key in PAGE_FIELDS} for label, p in figures["pages"].items()}
    if not pages:
        raise RuntimeError("bench.pages.run returned no page figures")
    budget = float(figures["budget_ms"])
    worst = max(p["p95_ms"] for p in pages.values())
    return {"argv": argv, "pages": pages, "p95_ms_max": worst, "budget_ms": budget, "budget_met": worst <= budget,
            "run": figures}


def browser_report(figures: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """The browser section's figures from `bench.browser.run()`'s dict (seconds): per page load / charts drawn
    (run()'s "full") / sidebar click, p50 and p95; the action dialog and the fresh process when measured."""
    pages = {title: {f"{name}_{q}_s": float(p[key][f"{q}_s"])
                     for name, key in (("load", "load"), ("charts", "full"), ("click", "click"))
                     for q in ("p50", "p95")}
             for title, p in figures["pages"].items()}
    if not pages:
        raise RuntimeError("bench.browser.run returned no page figures")
    budget = float(figures["budget_full_s"])
    worst = max(p["charts_p95_s"] for p in pages.values())
    report: dict[str, Any] = {"argv": argv, "pages": pages, "charts_p95_s_max": worst, "budget_s": budget,
                              "budget_met": worst <= budget, "run": figures}
    if "dialog" in figures:
        d, dialog_budget = figures["dialog"], float(figures["budget_dialog_s"])
        report["dialog"] = {"p50_s": float(d["p50_s"]), "p95_s": float(d["p95_s"]), "max_s": float(d["max_s"]),
                            "budget_s": dialog_budget, "budget_met": d["p95_s"] <= dialog_budget}
    if "fresh_listen_s" in figures:
        report["fresh"] = {"listen_s": float(figures["fresh_listen_s"]),
                           "first_overview_s": float(figures["fresh_first_full_s"])}
    return report


RUNNERS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "store": run_store, "probe": run_probe, "collector": run_collector, "pages": run_pages,
    "browser": run_browser, "rollups": run_rollups, "scaling": run_scaling,
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("redis", "hiredis", "uvloop", "asyncpg", "nats-py", "httpx", "aiohttp", "prometheus-client",
                 "orjson", "streamlit", "playwright", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    for name, argv in (("redis-server", ["redis-server", "--version"]), ("nats-server", ["nats-server", "--version"]),
                       ("postgres", ["pg_config", "--version"]),
                       ("blackbox_exporter", ["prometheus-blackbox-exporter", "--version"]),
                       ("chromium", ["chromium", "--version"])):
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            text = (res.stdout or res.stderr).strip().splitlines()
            out[name] = text[0] if text else "?"
        except (OSError, subprocess.TimeoutExpired):
            continue
    return out


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "cpu_model": cpu_model(), "platform": platform.platform(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def verdict(met: bool | None, how: str = "") -> str:
    if met is None:
        return "not measured"
    return "**met**" if met else f"**missed**{' ' + how if how else ''}"


def keep_others(report: dict[str, Any], previous: dict[str, Any]) -> None:
    """A run of some benchmarks (`--only`) keeps the other sections of the previous report, each marked with the
    run that measured it, instead of leaving docs/ with only the sections it ran."""
    for name, figures in previous.get("results", {}).items():
        if name in report["results"] or name not in SECTIONS:
            continue
        report["results"][name] = {**figures, "from_run": figures.get("from_run") or {
            "command": previous["command"], "date": previous["date"], "load_before": previous.get("load_before"),
            "load_after": figures.get("load_after", previous.get("load_after"))}}


def markdown(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    kept = any("from_run" in r for r in report["results"].values())
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{report['command']}` on {report['date']} (wall {report['wall_s']} s). Every figure and "
        "ratio below comes from this one run on this one machine" + (
            ", but for the sections it did not run, which keep an earlier run's figures and name it"
            if kept else "") + "; rerun the command to refresh them.",
        "",
        f"- Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gib']} GiB, {m['platform']}",
        f"- Load average (1 min) before / after: {report['load_before']} / {report['load_after']} "
        "(other work on the machine inflates absolute CPU and latency figures; ratios measured side by side "
        "in the same window are the robust ones)",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
    ]
    results = report["results"]
    for name in NAMES:
        if name not in results:
            continue
        r = results[name]
        if "error" in r:
            lines += [f"## {name}", "", f"Failed: `{r['error']}`", ""]
            continue
        section = SECTIONS[name](r)
        if "from_run" in r:
            run = r["from_run"]
            section[2:2] = [f"Figures of this section: `{run['command']}` on {run['date']} (load average "
                            f"{run.get('load_before')} before, {run.get('load_after')} after).", ""]
        lines += [*section, ""]
    return "\n".join(lines)


def section_store(r: dict[str, Any]) -> list[str]:
    per = r["bytes_per_sample"]
    miss = f"by {per - 10:.1f} B"
    return [
        "## Store (Redis)", "",
        f"`python -m bench.store --targets {r['targets']} --hours {r['hours']}`: {r['samples']:,} samples written "
        "through the collector's `RedisResultStore`, read back through the dashboard's `ReadModel`.", "",
        "| figure | value | budget |", "| --- | ---: | --- |",
        f"| bytes per history sample (`MEMORY USAGE`) | {per} | <= 10 B: {verdict(per <= 10, miss)} |",
        f"| projected: 10,000 targets x 24 h at 15 s | {r['projected_gib_10k_targets_24h']} GiB | well under 1 GB |",
        f"| read 24 h of one target, p50 / p95 | {r['read_24h_ms_p50']} / {r['read_24h_ms_p95']} ms | < 5 ms: "
        f"{verdict(r['read_24h_ms_p95'] < 5)} |",
        f"| Redis round trips per batch of results | {r['round_trips_per_batch']} (MULTI/EXEC pipeline) | |",
        f"| write throughput (bulk fill) | {r['write_results_per_s']:,} results/s | |",
    ]


def section_probe(r: dict[str, Any]) -> list[str]:
    from bench.probe import table

    kinds = r["kinds"]
    return [
        "## Probe efficiency vs prometheus-blackbox-exporter", "",
        f"`python -m bench.probe`: {r['rate_per_s']} probes/s of each kind, {r['window_s']} s measured per kind "
        f"after {r['warmup_s']} s warm-up, hulk-ops and {r['blackbox_version']} side by side on the same "
        "loopback targets. CPU = utime + stime from /proc/<pid>/stat of each process over the window, per probe "
        "completed in it; the driver calling blackbox's /probe is measured apart and not charged to it.", "",
        table(r), "",
        f"Budget hulk-ops <= {r['budget_ratio']}x blackbox_exporter: {verdict(r['budget_met'])} "
        f"(worst ratio {r['ratio_max']}).", "",
        *_probe_at_rate(r.get("at_rate")),
        "What each does per probe (hulk-ops does more per probe, and writes every result to its store):", "",
        "| kind | hulk-ops | blackbox_exporter |", "| --- | --- | --- |",
        *[f"| {k} | {x['hulk_does']} | {x['blackbox_does']} |" for k, x in kinds.items()],
        "",
        "Where hulk-ops' CPU goes (`python -m bench.probe --profile DIR`: cProfile of the collector over the "
        "window; the wake-ups column: voluntary context switches of the collector per probe): at 100 probes a "
        "second, first waking up. An idle uvloop woken 100 times a second costs ~0.18 ms of CPU a wake-up here "
        "(the caches are cold after each sleep), so the collector starts its runs on a 100 ms grid, each at the "
        "point nearest its plan (at most 50 ms early or late; the plan carries 0-5 % of random jitter anyway), "
        "and the runs that start together answer together and share the wake-ups after. Then the official "
        "clients' Python layers (redis-py's reply path, aiohttp's request and response objects, asyncpg's "
        "statement path, nats-py's parser and subscription task), the per-probe bookkeeping (check(), rules, "
        "breaker, metric updates) and the store write (one MULTI/EXEC per batch, every history and metric append "
        "in one EVAL). blackbox_exporter is compiled Go doing one connection and one exchange per probe. Read "
        "every cycle: Redis INFO, the PostgreSQL stats query, NATS JetStream account, stream and consumer info "
        "(memory, connections, lag and pending messages change between cycles; NATS sends its JetStream requests "
        "with the PING, one exchange). Read at most every 60 s: the PostgreSQL database size "
        "(`database_size_every_s`; pg_database_size() stats every file of the database, four times the server "
        "time of the rest of the stats query on 400 relations). Collector GC and the interpreter's switch "
        "interval were measured (GC off after the first cycle, `sys.setswitchinterval(0.05)`): no difference "
        "within run-to-run noise, so both stay as they are.",
        *_probe_before(r),
        *([] if r["budget_met"] else ["", *PROBE_MISSES]),
    ]


def _probe_before(r: dict[str, Any]) -> list[str]:
    """Before / after of this run (`--before REF`): each collector against blackbox measured in its own window."""
    before = r.get("before")
    if not before:
        return []
    pairs = [(f"{k}, {r['rate_per_s']}/s", before["kinds"].get(k), x) for k, x in r["kinds"].items()]
    if r.get("at_rate"):
        at, was = r["at_rate"], before.get("at_rate", {})
        pairs.append((f"redis, {at['rate_per_s']}/s ({at['targets']:,} targets)",
                      was.get("kinds", {}).get("redis"), at["kinds"]["redis"]))
    rows = [f"| {label} | {b['hulk_ms_per_probe']} ({b['blackbox_ms_per_probe']}, {b['ratio']}) | "
            f"{a['hulk_ms_per_probe']} ({a['blackbox_ms_per_probe']}, {a['ratio']}) |" for label, b, a in pairs if b]
    return ["", f"Before / after, this run: the same benchmark with the collector of `{before['ref']}` "
            "(`python -m bench --before REF`), then this checkout's; each ratio is against blackbox_exporter "
            "measured in the same window as that collector.", "",
            "| kind, rate | before: ms CPU / probe (blackbox, ratio) | after: ms CPU / probe (blackbox, ratio) |",
            "| --- | --- | --- |", *rows]


PROBE_MISSES = [
    "Where 0.3x is missed in this run, and what it would take (ratios move by 10-20 % between runs: "
    "blackbox_exporter's own CPU per probe ranged from 0.95 to 2.2 ms across runs of one session):", "",
    "- nats: the most Python per probe of the five (two publishes and a PING, then nats-py's protocol parser, a "
    "message object and a hand-off to the subscription's task per reply, the JSON replies decoded). It would take "
    "a client without the per-message hand-off, or fewer JetStream reads per cycle (stale usage and consumer lag).",
    "- postgres: two queries in sequence (`SELECT 1` for the latency, then the stats query), each answered by a "
    "backend process woken on its own, so the replies of probes that start together arrive apart (about twice "
    "Redis's wake-ups per probe). It would take one query per cycle (the latency read from the stats query).",
    "- redis, http, tcp: the per-probe bookkeeping and the clients' layers above; a coarser start grid would "
    "share more wake-ups at the price of start precision.",
]


def _probe_at_rate(r: dict[str, Any] | None) -> list[str]:
    from bench.probe import table

    if not r:
        return []
    return [f"`python -m bench.probe --kinds redis --rate {r['rate_per_s']} --targets {r['targets']} --warmup "
            f"{r['warmup_s']}`: {r['targets']:,} Redis targets at a {r['targets'] / r['rate_per_s']:g} s interval, "
            f"blackbox driven at the same {r['rate_per_s']} probes/s, {r['window_s']} s measured.", "",
            table(r), ""]


def section_collector(r: dict[str, Any]) -> list[str]:
    b = r.get("budget", {})
    rss_miss = f"by {r['rss_peak_mb'] - 300:.0f} MB"
    base = r.get("baseline")
    per_target = [] if not base else [
        f"| RSS per target: (RSS at {r['targets']:,} - RSS at {base['targets']:,}) / "
        f"{r['targets'] - base['targets']:,} | {r['rss_per_target_kb']} KB ({r['rss_mb']} - {base['rss_mb']} MB) "
        "| reported |"]
    return [
        "## One collector at scale", "",
        f"`python -m bench.collector`: one `hulk-ops collect` (uvloop) with {r['targets']:,} Redis targets (a private "
        f"loopback redis-server) at a {r['interval_s']} s interval, store writes on (a second private "
        f"redis-server); {r['cycles']} cycles measured ({r['window_s']} s) after warm-up (first cycle done "
        f"{r['first_cycle_s']} s after start, then one more interval).", "",
        "| figure | value | budget |", "| --- | ---: | --- |",
        f"| probes in the window | {r['probes']:,} ({r['probes_per_s']}/s) | |",
        f"| targets probed every cycle (no gap > {r['allowed_gap_s']} s) | {r['targets_probed_every_cycle']:,} of "
        f"{r['targets']:,} (largest gap {r['max_gap_s']} s) | all: {verdict(b.get('every_cycle_in_interval'))} |",
        f"| start jitter p50 / p99 / max (worst heartbeat) | {r['start_lag_ms_p50']} / {r['start_lag_ms_p99']} / "
        f"{r['start_lag_ms_max']} ms | p99 < 100 ms: {verdict(b.get('p99_jitter_under_100ms'))} |",
        f"| RSS (end of window / peak) | {r['rss_mb']} / {r['rss_peak_mb']} MB | < 300 MB: "
        f"{verdict(b.get('rss_under_300mb'), rss_miss)} |",
        *per_target,
        f"| mean CPU | {r['cpu_cores']} cores ({r['cpu_ms_per_probe']} ms per probe) | reported |",
        f"| runs skipped (previous still running), since start | {r['skipped']} | |",
        "",
        MEMORY_NOTE,
        *_collector_before(r),
    ]


def _collector_before(r: dict[str, Any]) -> list[str]:
    b = r.get("before")
    if not b:
        return []
    per = (f", {b['rss_per_target_kb']} KB per target" if "rss_per_target_kb" in b else "")
    return ["", f"Before / after, this run: the collector of `{b['ref']}` (`python -m bench --before REF`) measured "
            f"RSS {b['rss_mb']} MB{per}, start jitter p99 {b['start_lag_ms_p99']} ms, {b['cpu_ms_per_probe']} ms CPU "
            f"per probe, {b['targets_probed_every_cycle']:,} of {b['targets']:,} targets probed every cycle; this "
            f"checkout's: RSS {r['rss_mb']} MB"
            + (f", {r['rss_per_target_kb']} KB per target" if "rss_per_target_kb" in r else "")
            + f", p99 {r['start_lag_ms_p99']} ms, {r['cpu_ms_per_probe']} ms CPU per probe."]


MEMORY_NOTE = (
    "Memory (`HULK_OPS_HEAP_STATS=DIR HULK_OPS_HEAP_STATS_TOP=60 python -m bench.collector --targets 3000 "
    "--baseline-targets 0`: bench/heapstats.py's tracemalloc lines, divided by the targets): of what a Redis target "
    "costs, its redis-py client, pool and connection are ~3.3 KB and asyncio's stream reader and writer with "
    "uvloop's transport under them ~2.7 KB, the store's per-target state ~1.6 KB, its metric series ~1.1 KB "
    "(dict entries: the probe counter alone was a ~1.1 KB prometheus_client child), its latest result ~0.7 KB; "
    "its settings, probe, breaker and job and the allocator's overhead make the rest. The probe's client parses "
    "replies with redis-py's pure-Python parser (hiredis kept its read buffer, about twice the ~5 KB INFO reply, per "
    "connection), shares one event dispatcher (redis-py builds three per client) and leaves maintenance "
    "notifications off: that alone took this benchmark from ~460 to ~307 MB. Start jitter (how far from its plan, "
    "early or late, a probe started): each run starts at the point of the 100 ms wake-up grid nearest its plan, "
    "up to 50 ms either way, which is most of it; beyond that the collector is one Python thread, so anything "
    "that holds it (a garbage collection, a store batch of 500 results, the replies of the runs started together) "
    "delays every start due meanwhile; the first cycle (10,000 connections opened) is not measured.")


def section_pages(r: dict[str, Any]) -> list[str]:
    worst = f"(worst p95 {r['p95_ms_max']:.0f} ms)"
    rows = [f"| {name} | {p['cold_ms']:.0f} | {p['p50_ms']:.0f} | {p['p95_ms']:.0f} | {p['cpu_p95_ms']:.0f} |"
            for name, p in r["pages"].items()]
    return ["## Pages: server-side render (AppTest)", "",
            f"`{' '.join(['python -m bench.pages', *r['argv']])}` (owned by the pages work; figures from its `run()`, "
            "in a fresh process).",
            "", "| page | cold ms | p50 ms | p95 ms | CPU p95 ms |", "| --- | ---: | ---: | ---: | ---: |", *rows, "",
            f"Budget p95 <= {r['budget_ms']:.0f} ms: {verdict(r['budget_met'], worst)}"]


def section_browser(r: dict[str, Any]) -> list[str]:
    worst = f"(worst charts p95 {r['charts_p95_s_max']:.2f} s)"
    rows = [f"| {name} | {p['load_p50_s']:.2f} | {p['load_p95_s']:.2f} | {p['charts_p50_s']:.2f} | "
            f"{p['charts_p95_s']:.2f} | {p['click_p95_s']:.2f} |" for name, p in r["pages"].items()]
    return ["## Pages: full render in Chromium (Playwright)", "",
            f"`{' '.join(['python -m bench.browser', *r['argv']])}` (owned by the pages work; figures from its "
            "`run()`, in a fresh process).",
            "", "| page | load p50 s | load p95 s | charts p50 s | charts p95 s | click p95 s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |", *rows, "",
            f"Budget full render <= {r['budget_s']} s: "
            f"{verdict(r['budget_met'], worst)}", *_browser_extras(r)]


def _browser_extras(r: dict[str, Any]) -> list[str]:
    lines = []
    if "fresh" in r:
        f = r["fresh"]
        lines += ["", "A restarted dashboard (it warms its caches before listening) listened after "
                  f"{f['listen_s']:.1f} s and drew its first Overview {f['first_overview_s']:.2f} s later."]
    if "dialog" in r:
        d = r["dialog"]
        worst = f"(p95 {d['p95_s']:.2f} s)"
        lines += ["", f"Action dialog (operator, purge dry-run until the preview shows): p50 {d['p50_s']:.2f} s, "
                  f"p95 {d['p95_s']:.2f} s, max {d['max_s']:.2f} s. Budget <= {d['budget_s']} s: "
                  f"{verdict(d['budget_met'], worst)}"]
    return lines


def section_rollups(r: dict[str, Any]) -> list[str]:
    st, page, rep = r["storage"], r["page"], r["report"]
    return [
        "## Long-range tier (hour and day summaries)", "",
        "`python -m bench.rollups`: summaries built and encoded by the rollup job's own functions "
        "(hulk_ops/collectors/rollups.py), synthetic samples (15 s probes, lognormal latencies, 5 noisy metrics).", "",
        "| figure | value | budget |", "| --- | ---: | --- |",
        f"| storage, 35 d hourly + 400 d daily, per 1,000 targets (`MEMORY USAGE`, {st['targets']} targets "
        f"scaled) | {st['mb_per_1000_targets']} MB | <= {st['budget_mb']:.0f} MB: {verdict(st['budget_met'])} |",
        f"| Latency & SLOs at 30 d, {r['targets']} targets, server-side p50 / p95 (cold) | {page['p50_ms']} / "
        f"{page['p95_ms']} ms ({page['cold_ms']} ms) | p95 <= {page['budget_ms']:.0f} ms: "
        f"{verdict(page['budget_met'])} |",
        f"| `hulk-ops report slo --window 30d`, fresh process, p50 / max of {rep['runs']} | {rep['p50_s']} / "
        f"{rep['max_s']} s | <= {rep['budget_s']:.0f} s: {verdict(rep['budget_met'])} |",
        *(f"| `hulk-ops history import`, {i['lines']:,} lines (100 targets), wall / peak RSS | {i['wall_s']} s / "
          f"{i['peak_rss_mb']} MB | bounded memory |" for i in r.get("import", {}).values()),
    ]


def section_scaling(r: dict[str, Any]) -> list[str]:
    from bench.scaling import markdown as scaling_md

    return ["## Sharded collectors (bench/scaling.py)", "", scaling_md(r, "python -m bench --with-scaling")]


SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "store": section_store, "probe": section_probe, "collector": section_collector, "pages": section_pages,
    "rollups": section_rollups,
    "browser": section_browser, "scaling": section_scaling,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 3 min)")
    parser.add_argument("--with-scaling", action="store_true", help="also bench/scaling.py (10 replicas, slow)")
    parser.add_argument("--no-write", action="store_true", help="print the report, do not write docs/")
    parser.add_argument("--before", metavar="REF", help="also run the probe and collector benchmarks with the "
                        "collector as it was at git REF (before / after in the same run)")
    args = parser.parse_args(argv)
    wanted = [n for n in args.only.split(",") if n] or [n for n in NAMES if n != "scaling" or args.with_scaling]
    unknown = set(wanted) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))} (known: {', '.join(NAMES)})")
    if args.before:
        import tempfile

        BEFORE.update(ref=args.before, src=str(checkout(args.before, Path(tempfile.mkdtemp(prefix="hulk-before-")))))
    started = time.monotonic()
    report: dict[str, Any] = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
        "machine": machine(), "versions": versions(), "load_before": round(os.getloadavg()[0], 2), "results": {},
    }
    report["command"] = report["command"].strip()
    for name in wanted:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            figures = RUNNERS[name](args.quick)
        except (Exception, SystemExit) as exc:  # one failing benchmark must not lose the others' figures
            traceback.print_exc()
            figures = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        figures["bench_wall_s"] = round(time.monotonic() - t0, 1)
        figures["load_after"] = round(os.getloadavg()[0], 2)
        report["results"][name] = figures
        print(f"bench: {name} done in {figures['bench_wall_s']} s", file=sys.stderr, flush=True)
    report["load_after"] = round(os.getloadavg()[0], 2)
    report["wall_s"] = round(time.monotonic() - started, 1)
    if args.only and not args.no_write and JSON.exists():
        keep_others(report, json.loads(JSON.read_text(encoding="utf-8")))
    text = markdown(report)
    if args.no_write:
        print(text)
    else:
        DOC.write_text(text, encoding="utf-8")
        JSON.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)} and {JSON.relative_to(ROOT)}", file=sys.stderr)
    failed = [n for n, r in report["results"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
