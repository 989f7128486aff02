"""The prometheus probe and the query pull against a real Prometheus (one per module, see fixtures_prom)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import yaml

from hulk_ops.collectors.memory_store import MemoryResultStore
from hulk_ops.collectors.prometheus_pull import build_query_jobs
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.config import Config, load_config, parse_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.entrypoints.bootstrap import build_collector, build_probe
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.probes import prometheus as prometheus_module
from sandbox.services import free_port

pytest_plugins = ["tests.fixtures_prom"]


def config_of(**target: Any) -> Config:
    target = {"name": "prom", "kind": "prometheus", "interval_s": 5, "timeout_s": 2.0, **target}
    return parse_config(yaml.safe_dump({"targets": [target]}))


async def check_once(config: Config):
    probe = build_probe(config, config.targets[0])
    try:
        return await probe.check()
    finally:
        await probe.close()


async def test_reachable_with_version_and_a_down_scrape_target_is_degraded(prometheus) -> None:
    result = await check_once(config_of(url=prometheus.url))
    assert result.status == "degraded", result
    assert set(result.metrics) == {"targets_up", "targets_down", "targets_unknown", "alerts_firing", "alerts_pending"}
    assert prometheus_module.CATALOG.outside(result.metrics) == []
    assert result.version and result.version.startswith("2.")
    assert result.metrics["targets_up"] == 1
    assert result.metrics["targets_down"] == 1
    assert "targets_down = 1" in (result.error or "")
    assert 0 < result.latency_ms < 2000
    [down] = result.details["down_targets"]
    assert down["pool"] == "dead" and prometheus.dead_address in down["url"] and down["error"]


async def test_firing_alert_is_in_details(prometheus) -> None:
    result = await check_once(config_of(url=prometheus.url))
    assert result.metrics["alerts_firing"] == 1
    [alert] = result.details["alerts"]
    assert alert["name"] == "HulkOpsTestAlwaysFiring"
    assert alert["severity"] == "warning" and alert["labels"]["team"] == "ops"
    assert alert["summary"] == "the test alert fires at once"
    assert alert["state"] == "firing" and alert["active_at"].startswith("20")


async def test_degraded_comes_from_the_rule_not_the_probe(prometheus) -> None:
    result = await check_once(config_of(url=prometheus.url, rules=["targets_down off"]))
    assert result.status == "up", result.error
    assert result.metrics["targets_down"] == 1


async def test_query_pull_stores_named_series_readable_through_the_read_model(
    prometheus, write_config
) -> None:
    queries = [
        {"name": "test_value", "promql": "sum(hulk_ops_test_value)", "interval_s": 0.5},
        {"name": "shard_total", "promql": "scalar(sum(hulk_ops_test_shard))", "interval_s": 0.5},
        {"name": "scrape_up", "promql": "up", "interval_s": 0.5},
        {"name": "shard", "promql": "hulk_ops_test_shard", "interval_s": 0.5},
        {"name": "broken", "promql": "sum(", "interval_s": 0.5},
        {"name": "ranged", "promql": "up[1m]", "interval_s": 0.5},
    ]
    path = write_config([{"name": "prom", "kind": "prometheus", "url": prometheus.url, "interval_s": 1,
                          "queries": queries}])
    config = load_config(path)
    collector = build_collector(config, metrics=CollectorMetrics())
    read = ReadModel(config)
    exp = prometheus.exporter.address
    wanted = {
        "test_value": prometheus.exporter.value,
        "shard_total": sum(prometheus.exporter.shards.values()),
        f'scrape_up{{instance="{exp}",job="exporter"}}': 1.0,
        f'scrape_up{{instance="{prometheus.dead_address}",job="dead"}}': 0.0,
        **{f'shard{{instance="{exp}",job="exporter",shard="{k}"}}': v for k, v in prometheus.exporter.shards.items()},
    }
    stop = asyncio.Event()
    started = time.time()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop, collector=collector))
    try:
        for _ in range(50):  # at most ~10 s
            if all(len(read.series_history(n, started - 1, time.time() + 1)) >= 2 for n in wanted):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert set(read.series_names()) == set(wanted)
    for name, value in wanted.items():
        points = read.series_history(name, started - 1, time.time() + 1)
        assert len(points) >= 2, name  # pulled repeatedly, on its own interval
        assert set(points["value"].tolist()) == {value}, name
        assert points["ts"].min() >= started - 1
    failures = collector.metrics.query_failures
    assert failures.labels("broken")._value.get() >= 1
    assert failures.labels("ranged")._value.get() >= 1
    assert failures.labels("test_value")._value.get() == 0
    by_name = {j.query.name: j for j in collector.scheduler.periodic}
    assert "parse error" in by_name["broken"].last_error
    assert "range vector" in by_name["ranged"].last_error
    assert collector.metrics.query_up.labels("test_value")._value.get() == 1
    # the probe ran beside the pulls and its result is there too
    assert read.latest()["prom"].status == "degraded"


async def test_down_when_prometheus_is_stopped(bare_prometheus) -> None:
    services, endpoint = bare_prometheus
    config = config_of(url=endpoint.url)
    probe = build_probe(config, config.targets[0])
    try:
        first = await probe.check()
        services.stop()
        result = await probe.check()
    finally:
        await probe.close()
    assert first.status == "up", first.error
    assert first.metrics["targets_up"] == 0 and first.metrics["alerts_firing"] == 0
    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{endpoint.port})"


async def test_down_within_timeout_against_a_blackhole(blackhole: int) -> None:
    config = config_of(url=f"http://127.0.0.1:{blackhole}", timeout_s=1.0)
    started = time.perf_counter()
    result = await check_once(config)
    elapsed = time.perf_counter() - started
    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 0.9 <= elapsed <= 1.0 + 1.0


async def test_query_pull_failure_is_counted_within_its_timeout(blackhole: int) -> None:
    config = config_of(url=f"http://127.0.0.1:{blackhole}", timeout_s=1.0,
                       queries=[{"name": "stuck", "promql": "up"}])
    metrics, store = CollectorMetrics(), MemoryResultStore()
    [job] = build_query_jobs(config.targets, store, metrics)
    try:
        started = time.perf_counter()
        await job.run()
        elapsed = time.perf_counter() - started
    finally:
        await job.close()
    assert elapsed <= 1.0 + 1.0
    assert job.last_error == "timed out after 1.0 s"
    assert metrics.query_failures.labels("stuck")._value.get() == 1
    assert metrics.query_up.labels("stuck")._value.get() == 0
    assert store.series == []


async def test_query_pull_against_a_closed_port_names_the_address(closed_port: int) -> None:
    config = config_of(url=f"http://127.0.0.1:{closed_port}", queries=[{"name": "refused", "promql": "up"}])
    metrics = CollectorMetrics()
    [job] = build_query_jobs(config.targets, MemoryResultStore(), metrics)
    await job.run()
    await job.close()
    assert job.last_error == f"connection refused (127.0.0.1:{closed_port})"
    assert free_port()  # the machine still hands out ports: nothing leaked a listener
