"""Backend metrics on /metrics: names, labels and base units from the catalogs, staleness and the series bound."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hulk_ops.collectors.backend_export import BackendMetrics, Sample
from hulk_ops.collectors.store import tracked_matcher
from hulk_ops.core.catalog import Catalog, CatalogError, MetricSpec
from hulk_ops.probes import registry
from tests.seed import result

pytestmark = pytest.mark.unit


def scrape(samples: list[Sample], max_series: int = 50_000) -> dict[str, dict[tuple, float]]:
    reg = CollectorRegistry()
    reg.register(BackendMetrics(lambda: samples, registry.catalog,
                                lambda kind: tracked_matcher(registry.tracked_metrics(kind)), max_series=max_series))
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def sample(target: str, kind: str, metrics: dict, age_s: float = 1.0, status: str = "up") -> Sample:
    return Sample(target, kind, result(target, kind, status, time.time(), metrics=metrics), age_s, 15.0)


def test_tracked_metrics_become_gauges_in_base_units_with_sub_labels() -> None:
    got = scrape([
        sample("cache", "redis", {"used_memory_bytes": 1024.0, "memory_used_pct": 50.0, "keyspace.db0.keys": 7.0,
                                  "evicted_keys": 3.0}),
        sample("bus", "nats", {"consumer.ORDERS.billing.pending": 12.0, "js.storage_bytes": 10.0}),
        sample("k8s", "kubernetes", {"ns.shop.memory_requests_gib": 2.0, "node.n1.cpu_requests": 1.5}),
        sample("gpu", "runpod", {"cost_per_hr_total": 3.25}),
    ])
    assert got["hulk_ops_redis_used_memory_bytes"] == {(("target", "cache"),): 1024.0}
    assert got["hulk_ops_redis_memory_used_ratio"] == {(("target", "cache"),): 0.5}
    assert got["hulk_ops_redis_keyspace_keys"] == {(("db", "db0"), ("target", "cache")): 7.0}
    assert "hulk_ops_redis_evicted_keys_total" not in got  # not tracked: not exported
    assert got["hulk_ops_nats_consumer_pending"] == {(("consumer", "billing"), ("stream", "ORDERS"),
                                                      ("target", "bus")): 12.0}
    assert got["hulk_ops_kubernetes_namespace_memory_requests_bytes"] == {
        (("namespace", "shop"), ("target", "k8s")): 2.0 * 2**30}
    assert got["hulk_ops_kubernetes_node_cpu_requests_cores"] == {(("node", "n1"), ("target", "k8s")): 1.5}
    assert got["hulk_ops_runpod_cost_usd_per_hour"] == {(("target", "gpu"),): 3.25}
    assert got["hulk_ops_export_series"] == {(): 8.0} and got["hulk_ops_export_series_dropped"] == {(): 0.0}


def test_a_counter_is_exported_as_a_counter_with_its_total_suffix() -> None:
    catalog = Catalog([MetricSpec("queries", "Statements since start", type="counter"),
                       MetricSpec("lag_ms", "Lag", unit="seconds", scale=0.001, prom="lag_seconds")])
    reg = CollectorRegistry()
    reg.register(BackendMetrics(lambda: [sample("db", "mysql", {"queries": 42.0, "lag_ms": 250.0})],
                                lambda _kind: catalog, lambda _kind: lambda _name: True))
    text = generate_latest(reg).decode()
    assert "# TYPE hulk_ops_mysql_queries_total counter" in text or "# TYPE hulk_ops_mysql_queries counter" in text
    assert 'hulk_ops_mysql_queries_total{target="db"} 42.0' in text
    assert 'hulk_ops_mysql_lag_seconds{target="db"} 0.25' in text


def test_stale_and_down_results_are_left_out() -> None:
    got = scrape([sample("old", "redis", {"used_memory_bytes": 1.0}, age_s=46.0),
                  sample("down", "redis", {}, status="down"),
                  Sample("never", "redis", None, float("inf"), 15.0),
                  sample("fresh", "redis", {"used_memory_bytes": 2.0}, age_s=44.0)])
    assert got["hulk_ops_redis_used_memory_bytes"] == {(("target", "fresh"),): 2.0}


def test_series_past_max_series_are_dropped_and_counted() -> None:
    samples = [sample(f"c{i}", "redis", {"used_memory_bytes": 1.0, "connected_clients": 2.0}) for i in range(10)]
    got = scrape(samples, max_series=15)
    exported = sum(len(v) for k, v in got.items() if k.startswith("hulk_ops_redis_"))
    assert exported == 15
    assert got["hulk_ops_export_series"] == {(): 15.0} and got["hulk_ops_export_series_dropped"] == {(): 5.0}


def test_target_is_a_reserved_label() -> None:
    with pytest.raises(CatalogError, match="'target'"):
        MetricSpec("x.<target>.y", "h")
