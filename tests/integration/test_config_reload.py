"""Live config reload: a real `hulk-ops collect` subprocess re-reads its file on SIGHUP (and on a file change with
--watch-config). Added, removed and changed targets take effect; unchanged ones keep their breaker; an invalid
file is refused (old config kept, hulk_ops_config_reload_success 0)."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
import redis
import yaml

from hulk_ops.collectors.codec import Keys
from tests.waiting import wait_for

if TYPE_CHECKING:
    from tests.fixtures_outage import CollectorProcess

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_outage"]


def _write(path: Path, store_url: str, prefix: str, targets: list[dict]) -> None:
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": store_url, "prefix": prefix},
        "collector": {"breaker": {"failures": 2, "reset_s": 600}},
        "targets": targets,
    }), encoding="utf-8")


def _reloads(proc: CollectorProcess, event: str) -> list[dict]:
    return [line for line in proc.lines() if line.get("event") == event]


def _probes(proc: CollectorProcess, name: str) -> float:
    return proc.probes_by_target().get(name, 0.0)


def test_sighup_adds_removes_changes_and_refuses_an_invalid_file(
        services, collector_process, store_redis_url: str, store_prefix: str, closed_port: int,
        tmp_path: Path) -> None:
    cache = services.endpoints["redis"].url
    path = tmp_path / "reload.yaml"
    dead = {"name": "dead", "kind": "redis", "url": f"redis://127.0.0.1:{closed_port}", "interval_s": 0.5}
    _write(path, store_redis_url, store_prefix, [
        {"name": "a", "kind": "redis", "url": cache, "interval_s": 0.5},
        {"name": "b", "kind": "redis", "url": cache, "interval_s": 0.5},
        dead,
    ])
    proc = collector_process(path)
    assert wait_for(lambda: _probes(proc, "a") > 0 and _probes(proc, "b") > 0, 30)
    assert wait_for(lambda: proc.metric("hulk_ops_breaker_open", target="dead") == 1, 30)
    assert proc.metric("hulk_ops_config_reload_success") == 1
    started_at = proc.metric("hulk_ops_config_last_reload_timestamp_seconds")
    assert started_at > 0

    # remove b, add c, change a's interval; `dead` is unchanged: its open breaker must survive
    _write(path, store_redis_url, store_prefix, [
        {"name": "a", "kind": "redis", "url": cache, "interval_s": 2},
        {"name": "c", "kind": "redis", "url": cache, "interval_s": 0.5},
        dead,
    ])
    proc.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: _reloads(proc, "config_reloaded"), 20)
    done = _reloads(proc, "config_reloaded")[0]
    assert (done["added"], done["removed"], done["changed"]) == (["c"], ["b"], ["a"])
    assert wait_for(lambda: _probes(proc, "c") > 0, 20)
    assert proc.metric("hulk_ops_breaker_open", target="dead") == 1  # kept open: not a fresh breaker
    assert proc.metric("hulk_ops_probe_interval_seconds", target="a", kind="redis") == 2
    assert proc.metric("hulk_ops_config_last_reload_timestamp_seconds") > started_at
    # b is no longer probed; its stored history stays
    b_before = _probes(proc, "b")
    c_before = _probes(proc, "c")
    assert wait_for(lambda: _probes(proc, "c") >= c_before + 3, 20)
    assert _probes(proc, "b") == b_before
    client = redis.Redis.from_url(store_redis_url)
    try:
        assert client.hexists(Keys(store_prefix).latest, "b")
        latest_a = orjson.loads(client.hget(Keys(store_prefix).latest, "a"))
        assert latest_a["status"] == "up"
    finally:
        client.close()

    # an invalid file: refused, the old config stays in force
    path.write_text("targets: [ {name: a, kind: redis\n", encoding="utf-8")
    proc.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: _reloads(proc, "config_reload_refused"), 20)
    refused = _reloads(proc, "config_reload_refused")[0]
    assert "invalid YAML" in refused["error"] and refused["level"] == "error"
    assert proc.metric("hulk_ops_config_reload_success") == 0
    c_now = _probes(proc, "c")
    assert wait_for(lambda: _probes(proc, "c") >= c_now + 2, 20)  # still probing with the old set

    # a valid one again: the gauge recovers
    _write(path, store_redis_url, store_prefix, [{"name": "c", "kind": "redis", "url": cache, "interval_s": 0.5}])
    proc.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: proc.metric("hulk_ops_config_reload_success") == 1, 20)
    assert wait_for(lambda: math.isnan(proc.metric("hulk_ops_breaker_open", target="dead")), 20)
    assert proc.proc.poll() is None
    assert proc.terminate() < 10 and proc.proc.returncode == 0


def test_watch_config_reloads_on_a_file_change(services, store_redis_url: str, store_prefix: str,
                                               tmp_path: Path) -> None:
    from tests.fixtures_outage import CollectorProcess

    class Watching(CollectorProcess):
        def __init__(self, config: Path, log: Path) -> None:
            from sandbox.services import free_port
            from tests.fixtures_outage import Process

            self.metrics_port = free_port()
            Process.__init__(self, ["collect", "--config", str(config), "--metrics-port", str(self.metrics_port),
                                    "--watch-config"], log)

    cache = services.endpoints["redis"].url
    path = tmp_path / "watched.yaml"
    _write(path, store_redis_url, store_prefix, [{"name": "w1", "kind": "redis", "url": cache, "interval_s": 0.5}])
    proc = Watching(path, tmp_path / "watching.log")
    try:
        assert wait_for(lambda: _probes_safe(proc, "w1") > 0, 30), proc.log.read_text()[-2000:]
        # replaced, as editors and ConfigMap updates do: written beside it, then renamed over it
        fresh = tmp_path / "watched.yaml.tmp"
        _write(fresh, store_redis_url, store_prefix, [
            {"name": "w1", "kind": "redis", "url": cache, "interval_s": 0.5},
            {"name": "w2", "kind": "redis", "url": cache, "interval_s": 0.5},
        ])
        fresh.replace(path)
        assert wait_for(lambda: _probes_safe(proc, "w2") > 0, 30), proc.log.read_text()[-2000:]
        assert _reloads(proc, "config_reloaded")[0]["trigger"] == "file change"
    finally:
        proc.kill()


def _probes_safe(proc: CollectorProcess, name: str) -> float:
    try:
        return _probes(proc, name)
    except OSError:  # /metrics not listening yet
        return 0.0
