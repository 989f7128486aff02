"""`hulk-ops config check` rejects bad prometheus / http / tcp targets: exit 2, naming file, target and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hulk_ops.entrypoints.cli import main

PROM = {"name": "prom", "kind": "prometheus", "url": "http://127.0.0.1:9090"}
HTTP = {"name": "web", "kind": "http", "url": "http://127.0.0.1:8080/health"}
TCP = {"name": "ssh", "kind": "tcp", "url": "tcp://127.0.0.1:22"}


def run_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], *targets: dict[str, Any]) -> tuple[int, str, Path]:
    path = tmp_path / "hulk-ops.yaml"
    path.write_text(yaml.safe_dump({"targets": list(targets)}, sort_keys=False), encoding="utf-8")
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out, path


def test_good_targets_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prom = {**PROM, "queries": [{"name": "up", "promql": "up", "interval_s": 30}]}
    http = {**HTTP, "expect_status": [200, 204], "expect_body": {"regex": "ok|green"},
            "headers": {"Authorization": "Bearer x"}}
    code, out, path = run_check(tmp_path, capsys, prom, http, TCP)
    assert code == 0, out
    assert out.strip() == f"{path}: OK, 3 targets (http, prometheus, tcp)"


@pytest.mark.parametrize(("target", "where"), [
    ({**PROM, "url": "127.0.0.1:9090"}, "target 'prom' (targets[0]): url: must be an http:// or https:// URL"),
    ({**PROM, "queries": [{"name": "bad name", "promql": "up"}]}, "target 'prom' (targets[0]): queries[0].name:"),
    ({**PROM, "queries": [{"name": "q", "promql": ""}]}, "target 'prom' (targets[0]): queries[0].promql:"),
    ({**PROM, "queries": [{"name": "q", "promql": "up", "interval_s": 0}]},
     "target 'prom' (targets[0]): queries[0].interval_s:"),
    ({**PROM, "queries": [{"name": "q", "promql": "up", "step": 5}]},
     "target 'prom' (targets[0]): queries[0].step: unknown field"),
    ({**PROM, "queries": [{"name": "q", "promql": "up"}, {"name": "q", "promql": "down"}]},
     "target 'prom' (targets[0]): queries[1].name: duplicate query name 'q'"),
    ({**HTTP, "expect_status": 999}, "target 'web' (targets[0]): expect_status: 999 is not an HTTP status code"),
    ({**HTTP, "expect_body": {"regex": "([unclosed"}}, "target 'web' (targets[0]): expect_body: regex: "
                                                       "invalid regular expression: unterminated character set"),
    ({**HTTP, "expect_body": {"pattern": "x"}}, "target 'web' (targets[0]): expect_body: must be a substring, "
                                                "or {regex: <pattern>}"),
    ({**HTTP, "method": "BREW"}, "target 'web' (targets[0]): method:"),
    ({**HTTP, "url": "ftp://example"}, "target 'web' (targets[0]): url: must be an http:// or https:// URL"),
    ({**TCP, "url": "tcp://127.0.0.1"}, "target 'ssh' (targets[0]): url: must be tcp://host:port"),
    ({**TCP, "url": "http://127.0.0.1:22"}, "target 'ssh' (targets[0]): url: must be tcp://host:port"),
    ({**TCP, "url": "tcp://127.0.0.1:99999"}, "target 'ssh' (targets[0]): url: bad URL"),
])
def test_bad_target_is_rejected_naming_file_target_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: dict[str, Any], where: str
) -> None:
    code, out, path = run_check(tmp_path, capsys, target)
    assert code == 2
    assert out.startswith(f"hulk-ops: config error: {path}: {where}"), out


def test_a_series_name_is_pulled_by_one_target_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = {**PROM, "queries": [{"name": "cpu", "promql": "up"}]}
    second = {**PROM, "name": "prom-b", "queries": [{"name": "cpu", "promql": "sum(up)"}]}
    code, out, path = run_check(tmp_path, capsys, first, second)
    assert code == 2
    assert out.startswith(f"hulk-ops: config error: {path}: target 'prom-b' (targets[1]): queries[0].name: "
                          "series name 'cpu' is already used by target 'prom'"), out
