"""`python -m bench`'s page sections from `bench.pages.run()` / `bench.browser.run()` dicts (no table parsing),
and bench/isolate.py, which calls such a run() in a fresh process."""

from __future__ import annotations

import inspect
import json
import os
import signal
import time
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.isolate import call_in_fresh_process

# shaped as bench/pages.py's run() returns them (ms); radar is outside the pages' own budget list
PAGES_RUN = {
    "targets": 300, "hours": 6, "runs": 3, "cpus": 2, "budget_ms": 300.0, "seeded": {"targets": 300},
    "warm_up_s": {"imports": 0.17, "read model": 2.0}, "load_avg_start": 0.6, "load_avg_end": 0.7,
    "budget_met": True, "budget_met_cpu": True,
    "pages": {
        "overview": {"cold_ms": 29.4, "cold_cpu_ms": 27.0, "p50_ms": 35.2, "p95_ms": 46.1, "max_ms": 48.0,
                     "cpu_p50_ms": 33.0, "cpu_p95_ms": 43.4},
        "latency 24 h": {"cold_ms": 68.0, "cold_cpu_ms": 60.0, "p50_ms": 70.0, "p95_ms": 97.0, "max_ms": 99.0,
                         "cpu_p50_ms": 61.0, "cpu_p95_ms": 87.0},
        "radar": {"cold_ms": 24.0, "cold_cpu_ms": 20.0, "p50_ms": 18.0, "p95_ms": 312.4, "max_ms": 330.0,
                  "cpu_p50_ms": 17.0, "cpu_p95_ms": 18.0},
    },
}


def _stats(p50: float, p95: float, mx: float) -> dict[str, float]:
    return {"p50_s": p50, "p95_s": p95, "max_s": mx}


# shaped as bench/browser.py's run() returns them (seconds)
BROWSER_RUN = {
    "targets": 300, "hours": 6, "runs": 2, "budget_full_s": 2.0, "budget_dialog_s": 1.0, "load_avg_start": 0.9,
    "fresh_listen_s": 7.53, "fresh_first_full_s": 1.084,
    "pages": {
        "Overview": {"load": _stats(0.75, 0.81, 0.9), "full": _stats(0.89, 0.94, 1.0),
                     "click": _stats(0.19, 0.22, 0.3)},
        "Cost": {"load": _stats(0.58, 0.72, 0.8), "full": _stats(0.83, 2.31, 2.4),
                 "click": _stats(0.37, 0.49, 0.5)},
    },
    "dialog": _stats(0.21, 0.28, 0.29), "load_avg_end": 2.7, "budget_met": False, "budget_dialog_met": True,
}


def test_pages_run_dict_maps_to_the_section_rows_and_the_worst_p95() -> None:
    report = bench_main.pages_report(PAGES_RUN, bench_main._argv(bench_main.PAGES_QUICK))

    assert report["pages"]["overview"] == {"cold_ms": 29.4, "p50_ms": 35.2, "p95_ms": 46.1, "max_ms": 48.0,
                                           "cpu_p50_ms": 33.0, "cpu_p95_ms": 43.4}
    assert list(report["pages"]) == ["overview", "latency 24 h", "radar"]  # run()'s order is the table's
    # the verdict is on every page of the table (as the section says), not only run()'s budgeted ones
    assert report["p95_ms_max"] == 312.4 and report["budget_ms"] == 300.0 and report["budget_met"] is False
    assert report["run"] is PAGES_RUN
    lines = bench_main.section_pages(report)
    assert "`python -m bench.pages --targets 300 --hours 6 --runs 3` (owned by the pages work; figures from its " \
           "`run()`, in a fresh process)." in lines
    assert [line for line in lines if line.startswith("| ") and "---" not in line][1:] == [
        "| overview | 29 | 35 | 46 | 43 |", "| latency 24 h | 68 | 70 | 97 | 87 |", "| radar | 24 | 18 | 312 | 18 |"]
    assert lines[-1] == "Budget p95 <= 300 ms: **missed** (worst p95 312 ms)"
    json.dumps(report)  # goes into docs/benchmarks.json as is


def test_pages_within_budget_and_the_full_run_has_no_options() -> None:
    fast = {**PAGES_RUN, "pages": {k: v for k, v in PAGES_RUN["pages"].items() if k != "radar"}}
    report = bench_main.pages_report(fast, bench_main._argv({}))
    assert report["budget_met"] is True and report["p95_ms_max"] == 97.0
    assert bench_main.section_pages(report)[-1] == "Budget p95 <= 300 ms: **met**"
    assert bench_main.section_pages(report)[2].startswith("`python -m bench.pages` (owned")


def test_browser_run_dict_maps_to_the_section_rows_dialog_and_fresh_process() -> None:
    report = bench_main.browser_report(BROWSER_RUN, bench_main._argv(bench_main.BROWSER_QUICK))

    assert report["pages"]["Overview"] == {"load_p50_s": 0.75, "load_p95_s": 0.81, "charts_p50_s": 0.89,
                                           "charts_p95_s": 0.94, "click_p50_s": 0.19, "click_p95_s": 0.22}
    assert report["charts_p95_s_max"] == 2.31 and report["budget_s"] == 2.0 and report["budget_met"] is False
    assert report["dialog"] == {"p50_s": 0.21, "p95_s": 0.28, "max_s": 0.29, "budget_s": 1.0, "budget_met": True}
    assert report["fresh"] == {"listen_s": 7.53, "first_overview_s": 1.084}
    lines = bench_main.section_browser(report)
    assert "`python -m bench.browser --targets 300 --hours 6 --runs 2` (owned by the pages work; figures from " \
           "its `run()`, in a fresh process)." in lines
    assert [line for line in lines if line.startswith("| ") and "---" not in line][1:] == [
        "| Overview | 0.75 | 0.81 | 0.89 | 0.94 | 0.22 |", "| Cost | 0.58 | 0.72 | 0.83 | 2.31 | 0.49 |"]
    assert "Budget full render <= 2.0 s: **missed** (worst charts p95 2.31 s)" in lines
    assert lines[-3] == ("A restarted dashboard (it warms its caches before listening) listened after 7.5 s and "
                         "drew its first Overview 1.08 s later.")
    assert lines[-1] == ("Action dialog (operator, purge dry-run until the preview shows): p50 0.21 s, p95 0.28 s, "
                         "max 0.29 s. Budget <= 1.0 s: **met**")
    json.dumps(report)


def test_browser_without_the_dialog_has_no_dialog_line() -> None:
    figures = {k: v for k, v in BROWSER_RUN.items() if k not in ("dialog", "budget_dialog_met")}  # run(dialog=False)
    report = bench_main.browser_report(figures, [])
    assert "dialog" not in report and "fresh" in report
    assert not any(line.startswith("Action dialog") for line in bench_main._browser_extras(report))


@pytest.mark.parametrize("build", [bench_main.pages_report, bench_main.browser_report])
def test_no_page_figures_is_a_failure_not_an_empty_table(build) -> None:
    with pytest.raises(RuntimeError, match="no page figures"):
        build({**PAGES_RUN, **BROWSER_RUN, "pages": {}}, [])


def test_quick_sizes_are_run_arguments_and_command_line_options() -> None:
    from bench import browser, pages

    for module, sizes in ((pages, bench_main.PAGES_QUICK), (browser, bench_main.BROWSER_QUICK)):
        assert set(sizes) <= set(inspect.signature(module.run).parameters), module.__name__
    assert bench_main._argv(bench_main.PAGES_QUICK) == ["--targets", "300", "--hours", "6", "--runs", "3"]


def test_fresh_process_returns_run_s_dict_and_keeps_stdout_for_the_report(capfd, monkeypatch) -> None:
    monkeypatch.setenv("HULK_OPS_CONFIG", "/from/the/parent.yaml")
    result = call_in_fresh_process("tests.unit.bench_child", {"value": 7}, 60)
    assert result["value"] == 7 and result["pid"] != os.getpid()
    assert result["config_env"] == "/from/the/parent.yaml"  # inherits the environment, changes none of ours
    out, err = capfd.readouterr()
    assert f"progress table from {result['pid']}" in err and "progress table" not in out


def test_fresh_process_failure_is_raised_with_its_reason() -> None:
    with pytest.raises(RuntimeError, match=r"tests.unit.bench_child.run raised SystemExit: page broke: boom"):
        call_in_fresh_process("tests.unit.bench_child", {"mode": "raise"}, 60)


@pytest.fixture(params=["sigint default", "sigint ignored"])
def parent_sigint(request):
    """The parent as a foreground shell starts it, and as a background job (`make test &`, nohup, CI runners):
    SIGINT ignored, a disposition the spawned child inherits through exec."""
    if request.param == "sigint default":
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("parent_sigint")
def test_fresh_process_timeout_interrupts_it_so_its_cleanup_runs(tmp_path: Path) -> None:
    marker = tmp_path / "cleanup"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within 3 s"):
        call_in_fresh_process("tests.unit.bench_child", {"mode": "sleep", "marker": str(marker)}, 3)
    assert marker.read_text(encoding="utf-8") == "cleaned up"
    assert time.monotonic() - started < 30


def test_before_runs_the_other_checkouts_collector_first_then_this_one(tmp_path, monkeypatch) -> None:
    """`python -m bench --before REF`: REF's tree is unpacked, the benchmark runs with HULK_BENCH_COLLECTOR_SRC
    pointing at it, then without; both figures land in one report and the collector section shows both."""
    monkeypatch.delenv("HULK_BENCH_COLLECTOR_SRC", raising=False)
    src = bench_main.checkout("HEAD", tmp_path / "before")
    assert (src / "hulk_ops" / "__main__.py").is_file()
    monkeypatch.setattr(bench_main, "BEFORE", {"ref": "HEAD", "src": str(src)})
    seen = []
    figures = {"targets": 2000, "rss_mb": 106.8, "rss_per_target_kb": 18.2, "start_lag_ms_p99": 20.6,
               "cpu_ms_per_probe": 0.293, "targets_probed_every_cycle": 2000}

    def run() -> dict:
        seen.append(os.environ.get("HULK_BENCH_COLLECTOR_SRC"))
        return dict(figures, rss_mb=152.6 if len(seen) == 1 else 106.8)

    out = bench_main.with_before(run)
    assert seen == [str(src), None] and "HULK_BENCH_COLLECTOR_SRC" not in os.environ
    assert out["rss_mb"] == 106.8 and out["before"]["rss_mb"] == 152.6 and out["before"]["ref"] == "HEAD"
    line = bench_main._collector_before(out)[-1]
    assert "`HEAD`" in line and "RSS 152.6 MB" in line and "RSS 106.8 MB" in line


def test_before_an_unknown_ref_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(SystemExit, match="--before no-such-ref"):
        bench_main.checkout("no-such-ref", tmp_path / "x")


def test_a_partial_run_keeps_the_other_sections_and_names_the_run_that_measured_them(monkeypatch) -> None:
    monkeypatch.setattr(bench_main, "SECTIONS", {name: (lambda r, n=name: [f"## {n}", "", f"value {r['v']}"])
                                                 for name in bench_main.NAMES})
    previous = {"command": "python -m bench", "date": "2026-11-24 07:51 UTC", "load_before": 0.5, "load_after": 2.5,
                "results": {"store": {"v": 1, "load_after": 0.7}, "probe": {"v": 2}, "gone": {"v": 0}}}
    report = {"command": "python -m bench --only probe", "date": "2026-12-04 11:49 UTC", "wall_s": 9.0,
              "machine": {"cores": 2, "cpu_model": "x", "memory_gib": 1, "platform": "p"}, "versions": {},
              "load_before": 0.3, "load_after": 0.2, "results": {"probe": {"v": 3}}}
    bench_main.keep_others(report, previous)
    assert set(report["results"]) == {"store", "probe"}  # this run's probe figures win; unknown sections go
    assert report["results"]["probe"] == {"v": 3}
    text = bench_main.markdown(report)
    assert "## store\n\nFigures of this section: `python -m bench` on 2026-11-24 07:51 UTC (load average 0.5 " \
           "before, 0.7 after).\n\nvalue 1" in text
    assert "## probe\n\nvalue 3" in text
    assert "but for the sections it did not run" in text
    again = dict(report, command="python -m bench --only collector", results={})
    bench_main.keep_others(again, report)  # a section kept twice still names the run that measured it
    assert again["results"]["store"]["from_run"]["date"] == "2026-11-24 07:51 UTC"
    assert "from_run" in again["results"]["probe"] and again["results"]["probe"]["v"] == 3
