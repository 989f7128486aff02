"""deploy/prometheus rules and deploy/grafana dashboard, against promtool and a real Prometheus scraping a
real collector (`hulk-ops collect`) that probes a dead target and cannot reach its store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.services import Services, find_binary, free_port, stop_process, wait_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hulk-ops-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "hulk-ops-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hulk-ops.json"
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$job": ".*"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = find_binary("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make system` installs Debian's prometheus package")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert {"HulkOpsTargetDown", "HulkOpsCollectorStale", "HulkOpsBreakerOpen", "HulkOpsCycleLagGrowing",
            "HulkOpsStoreUnreachable"} <= alerts


def test_promtool_test_rules() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def fast_rules() -> dict[str, Any]:
    """The shipped rules with every `for:` at 2 s and a 1 s evaluation, so a test is bounded."""
    data = yaml.safe_load(RULES.read_text())
    for group in data["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    return data


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A collector subprocess (dead target, live target, unreachable store) and a Prometheus scraping it."""
    work = tmp_path_factory.mktemp("prom-rules")
    dead_store, dead_target, metrics_port = free_port(), free_port(), free_port()
    config = {
        "store": {"redis_url": f"redis://127.0.0.1:{dead_store}/0", "prefix": f"t{uuid.uuid4().hex[:10]}:"},
        "collector": {"breaker": {"failures": 1000}},
        "targets": [
            {"name": "dead", "kind": "redis", "url": f"redis://127.0.0.1:{dead_target}", "interval_s": 0.5},
            {"name": "live", "kind": "tcp", "url": f"tcp://127.0.0.1:{metrics_port}", "interval_s": 0.5},
        ],
    }
    config_path = work / "hulk-ops.yaml"
    config_path.write_text(yaml.safe_dump(config))
    collector = subprocess.Popen(
        [sys.executable, "-m", "hulk_ops", "collect", "--config", str(config_path),
         "--metrics-port", str(metrics_port), "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rules_path = work / "rules.yml"
    rules_path.write_text(yaml.safe_dump(fast_rules()))
    prometheus_yaml = yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_path)],
        "scrape_configs": [{"job_name": "hulk-ops", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    })
    try:
        wait_port(metrics_port, 30, collector, "hulk-ops collect")
        with Services(work) as services:
            prometheus = services.prometheus(prometheus_yaml)
            assert wait_for(lambda: ready(prometheus.url), 30, 0.2), "prometheus did not become ready"
            yield {"url": prometheus.url, "metrics_port": metrics_port}
    finally:
        stop_process(collector)


def ready(base: str) -> bool:
    """Prometheus listens before it serves: /-/ready answers 503 until the TSDB and rules are loaded."""
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def api(base: str, path: str, **params: str) -> dict[str, Any]:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a bad query is a 400 with a JSON error body
        return json.loads(exc.read())


def firing(base: str) -> list[dict[str, str]]:
    alerts = api(base, "/api/v1/alerts")["data"]["alerts"]
    return [a["labels"] for a in alerts if a["state"] == "firing"]


def test_real_prometheus_loads_the_rules_and_fires_for_a_dead_target(stack) -> None:
    base = stack["url"]
    groups = api(base, "/api/v1/rules")["data"]["groups"]
    assert {g["name"] for g in groups} == {"hulk-ops.recording", "hulk-ops.slo", "hulk-ops.alerts"}
    assert all(r["health"] in ("ok", "unknown") for g in groups for r in g["rules"])  # unknown: not evaluated yet

    def target_down() -> list[dict[str, str]]:
        return [a for a in firing(base) if a["alertname"] == "HulkOpsTargetDown"]

    started = time.monotonic()
    down = wait_for(target_down, 40, step=0.5)
    assert [(a["target"], a["kind"], a["severity"]) for a in down] == [("dead", "redis", "critical")]
    assert time.monotonic() - started < 40
    store = wait_for(lambda: [a for a in firing(base) if a["alertname"] == "HulkOpsStoreUnreachable"], 20, 0.5)
    assert store and store[0]["job"] == "hulk-ops" and store[0]["severity"] == "critical"
    names = {a["alertname"] for a in firing(base)}
    assert "HulkOpsCollectorStale" not in names and "HulkOpsCollectorDown" not in names  # it probes fine
    recorded = api(base, "/api/v1/query", query="hulk_ops:targets_down:sum")["data"]["result"]
    assert [(r["metric"]["job"], r["value"][1]) for r in recorded] == [("hulk-ops", "1")]


def grafana_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_grafana_dashboard_is_a_valid_model() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = {m for _t, e in grafana_exprs() for m in re.findall(r"\$(\w+)", e)}
    assert used <= variables | {"__rate_interval", "__interval"}


def test_every_grafana_query_runs_on_the_real_prometheus(stack) -> None:
    base = stack["url"]
    wait_for(lambda: api(base, "/api/v1/query", query="count(hulk_ops_probes_total)")["data"]["result"], 20, 0.5)
    time.sleep(2.5)  # rate() over 1m needs two scrapes
    problems = []
    results = {}
    for title, expr in grafana_exprs():
        query = expr
        for var, value in GRAFANA_VARS.items():
            query = query.replace(var, value)
        answer = api(base, "/api/v1/query", query=query)
        if answer.get("status") != "success":
            problems.append((title, query, answer.get("error")))
        else:
            results[title] = answer["data"]["result"]
    assert problems == []
    assert results["Targets down"][0]["value"][1] == "1"
    assert results["Store writable"][0]["value"][1] == "0"
    assert {r["metric"]["status"] for r in results["Probes per second by status"]} == {"up", "down"}


def test_promql_reads_target_state_and_build_info_from_a_real_scrape(stack) -> None:
    base = stack["url"]

    def value(query: str) -> list[dict[str, Any]]:
        return api(base, "/api/v1/query", query=query)["data"]["result"]

    assert wait_for(lambda: value('hulk_ops_target_state{target="dead"} == 1'), 20, 0.5)
    states = {r["metric"]["target"]: r["metric"]["state"] for r in value("hulk_ops_target_state == 1")}
    assert states == {"dead": "down", "live": "up"}  # one state each, the others 0
    assert len(value('hulk_ops_target_state{target="dead"}')) == 4
    (info,) = value("hulk_ops_build_info")
    assert info["metric"]["version"] and info["metric"]["python"].count(".") == 2
    assert {r["metric"]["kind"] for r in value("hulk_ops_probe_duration_seconds_count")} == {"redis", "tcp"}
    assert {r["metric"]["target"] for r in value("hulk_ops_probe_last_duration_seconds")} == {"dead", "live"}
