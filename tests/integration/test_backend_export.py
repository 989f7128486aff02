"""Backend metrics through the real collector's /metrics, scraped by a real Prometheus and read back with PromQL."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from hulk_ops.core.config import load_config
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.probes import registry
from sandbox.services import Services, free_port

pytestmark = pytest.mark.integration


async def query_until(url: str, promql: str, timeout_s: float = 20.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    found: list[dict] = []
    while asyncio.get_running_loop().time() < deadline:
        answer = await asyncio.to_thread(requests.get, f"{url}/api/v1/query", params={"query": promql}, timeout=2)
        found = answer.json()["data"]["result"]
        if found:
            return found
        await asyncio.sleep(0.5)
    return found


async def test_prometheus_scrapes_backend_metrics_named_from_the_catalogs(
        redis_server, postgres_server, write_config, tmp_path) -> None:
    from tests.fixtures_prom import prometheus_config, wait_ready  # here: other modules load it as a pytest plugin

    path = write_config([{"name": "cache", "kind": "redis", "url": redis_server.url, "interval_s": 1},
                         {"name": "orders-db", "kind": "postgres", "url": postgres_server.url, "interval_s": 1}],
                        export={"max_series": 1000})
    config = load_config(path)
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=port, stop=stop))
    try:
        with Services(tmp_path / "prom", reuse=False) as services:
            prom = services.prometheus(prometheus_config({"collector": f"127.0.0.1:{port}"}, None))
            await asyncio.to_thread(wait_ready, prom.url, 1, False)
            found = await query_until(prom.url, 'hulk_ops_redis_used_memory_bytes{target="cache"}')
            assert found and float(found[0]["value"][1]) > 0
            ratio = await query_until(prom.url, 'hulk_ops_postgres_connections_used_ratio{target="orders-db"}')
            assert ratio and 0 < float(ratio[0]["value"][1]) < 1  # percent exported as a ratio
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    names = {kind: {f"hulk_ops_{kind}_{spec.prom}" for spec in registry.catalog(kind)}
             for kind in ("redis", "postgres")}
    exported = {f.name for f in text_string_to_metric_families(text)
                if f.name.startswith(("hulk_ops_redis_", "hulk_ops_postgres_"))}
    assert exported, text[:2000]
    outside = [n for n in exported if n not in names["redis"] | names["postgres"]]
    assert not outside, outside  # every backend family comes from a catalog
    assert "hulk_ops_export_series_dropped 0.0" in text
