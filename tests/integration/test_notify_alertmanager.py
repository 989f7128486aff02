"""`format: alertmanager` against a real Alertmanager (Debian's prometheus-alertmanager, started here)."""

from __future__ import annotations

import asyncio

import httpx

from hulk_ops.core.config import load_config
from hulk_ops.entrypoints.service import run_collector
from sandbox.services import Services
from tests.waiting import await_for

pytest_plugins = ["tests.fixtures_observe"]

AM_CONFIG = """
route: {receiver: nobody, group_wait: 1h}
receivers: [{name: nobody}]
"""


def active(base: str) -> list[dict]:
    """Alerts Alertmanager lists as not yet ended (its API leaves resolved ones out)."""
    alerts = httpx.get(f"{base}/api/v2/alerts", timeout=5).json()
    return [a for a in alerts if a["labels"].get("alertname") == "HulkOpsIncident"]


async def test_incident_fires_is_reposted_and_resolves_in_alertmanager(tmp_path, restartable_redis,
                                                                       write_config) -> None:
    with Services(tmp_path / "am", reuse=False) as services:
        am = services.alertmanager(AM_CONFIG)
        url = restartable_redis.url
        config = load_config(write_config(
            [{"name": "cache", "kind": "redis", "url": url, "interval_s": 0.5,
              "runbook_url": "https://runbooks.example/cache"},
             {"name": "app", "kind": "redis", "url": f"{url}/1", "interval_s": 0.5, "depends_on": ["cache"]}],
            collector={"breaker": {"failures": 3, "reset_s": 0.5}, "jitter_pct": 0},
            notify={"group_wait_s": 0.5, "update_interval_s": 0, "evaluate_s": 0.2,
                    "dashboard_url": "http://ops.example:8501",
                    "webhooks": [{"name": "am", "url": f"{am.url}/api/v2/alerts", "format": "alertmanager",
                                  "resend_s": 1}]}))
        stop = asyncio.Event()
        task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
        try:
            await asyncio.sleep(1.5)
            assert active(am.url) == []
            restartable_redis.stop()
            assert await await_for(lambda: active(am.url), 10)
            (alert,) = active(am.url)
            assert alert["status"]["state"] == "active"
            assert {k: alert["labels"][k] for k in ("target", "root_cause", "kind", "severity")} == {
                "target": "cache", "root_cause": "cache", "kind": "redis", "severity": "critical"}
            assert alert["annotations"]["runbook_url"] == "https://runbooks.example/cache"
            assert alert["annotations"]["dependents"] == "app" and alert["generatorURL"] == "http://ops.example:8501"
            first_end = alert["endsAt"]
            await asyncio.sleep(5.0)  # past the first post's endsAt (4 x resend_s): only re-posts keep it firing
            (again,) = active(am.url)
            assert again["fingerprint"] == alert["fingerprint"] and again["endsAt"] > first_end
            restartable_redis.start()
            assert await await_for(lambda: active(am.url) == [], 10)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
