"""Kubernetes discovery end to end: a real `hulk-ops collect` borrows a kubernetes target's credentials, lists the
simulator's Services through the official client, and probes the annotated ones (the real Redis); a Secret's keys
become the target's credentials; a static target wins a name clash (logged); a Service that disappears ends its
target (its stored history stays); the discovered set is published for the dashboard, without secrets."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
import redis
import yaml

from hulk_ops.collectors import discovery
from hulk_ops.collectors.codec import Keys
from hulk_ops.core import discovered
from hulk_ops.core.config import parse_config
from hulk_ops.core.discovery_config import KubernetesDiscoverySettings
from sandbox.k8s_sim import DEFAULT_TOKEN
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_k8s", "tests.fixtures_outage"]


def _service(ns: str, service: str, port: int, **notes: str) -> dict:
    return {"namespace": ns, "name": service, "cluster_ip": "127.0.0.1", "ports": [{"name": "main", "port": port}],
            "annotations": {f"hulk-ops.io/{k.replace('_', '-')}": v for k, v in notes.items()}}


def test_annotated_services_become_targets(k8s_sim, services, collector_process, store_redis_url: str,
                                           store_prefix: str, tmp_path: Path) -> None:
    redis_port = services.endpoints["redis"].port or 6379
    k8s_sim.control("put_service", _service("hulk-prod", "cache", redis_port, kind="redis", path="/0",
                                            labels="team=core,tier=data", interval="0.5"))
    k8s_sim.control("put_service", _service("hulk-prod", "plain", 80))  # not annotated: ignored
    k8s_sim.control("put_service", _service("ml", "clash", redis_port, kind="redis", name="static-cache",
                                            interval="0.5"))
    k8s_sim.control("put_secret", {"namespace": "hulk-prod", "name": "sessions-auth",
                                   "data": {"password": "disc-canary-pw"}})
    k8s_sim.control("put_service", _service("hulk-prod", "sessions", redis_port, kind="redis", interval="0.5",
                                            secret="sessions-auth", depends_on="cache.hulk-prod"))
    path = tmp_path / "discovery.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": store_redis_url, "prefix": store_prefix},
        "discovery": {"kubernetes": {"target": "cluster", "namespaces": ["hulk-prod", "ml"], "refresh_s": 1}},
        "targets": [
            {"name": "cluster", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN, "interval_s": 5},
            {"name": "static-cache", "kind": "redis", "url": services.endpoints["redis"].url, "interval_s": 0.5},
        ],
    }), encoding="utf-8")
    proc = collector_process(path)
    store = redis.Redis.from_url(store_redis_url)
    keys = Keys(store_prefix)
    try:
        def latest() -> dict[str, dict]:
            return {k.decode(): orjson.loads(v) for k, v in store.hgetall(keys.latest).items()}

        assert wait_for(lambda: {"cache.hulk-prod", "sessions.hulk-prod"} <= set(latest()), 30), \
            proc.log.read_text()[-3000:]
        assert latest()["cache.hulk-prod"]["status"] == "up"
        # the Secret's password went into the URL: the shared Redis ignores it (no requirepass), the probe is up
        assert latest()["sessions.hulk-prod"]["status"] == "up"
        clash = [line for line in proc.lines() if line.get("event") == "discovery_name_clash"]
        assert clash and clash[0]["target"] == "static-cache" and clash[0]["hidden"] == "kubernetes: ml/clash"
        published = {t["name"]: t for t in orjson.loads(store.get(keys.discovered))}
        assert set(published) == {"cache.hulk-prod", "sessions.hulk-prod", "static-cache"}
        assert published["cache.hulk-prod"]["origin"] == "kubernetes: hulk-prod/cache"
        assert published["cache.hulk-prod"]["labels"] == {"team": "core", "tier": "data"}
        assert published["sessions.hulk-prod"]["depends_on"] == ["cache.hulk-prod"]
        assert "disc-canary-pw" not in store.get(keys.discovered).decode()
        assert "disc-canary-pw" not in proc.log.read_text()

        # the Service goes away: its target ends, its history stays
        k8s_sim.control("delete_service", {"namespace": "hulk-prod", "name": "sessions"})
        assert wait_for(lambda: "sessions.hulk-prod" not in
                        {t["name"] for t in orjson.loads(store.get(keys.discovered))}, 20)
        assert wait_for(lambda: any(line.get("event") == "discovery_applied" and "sessions.hulk-prod" in
                                    line.get("removed", []) for line in proc.lines()), 10)
        done = proc.probes_by_target().get("sessions.hulk-prod", 0.0)
        cache_now = proc.probes_by_target()["cache.hulk-prod"]
        assert wait_for(lambda: proc.probes_by_target()["cache.hulk-prod"] >= cache_now + 3, 20)
        assert proc.probes_by_target().get("sessions.hulk-prod", 0.0) == done
        assert store.hexists(keys.latest, "sessions.hulk-prod")

        # a reload of the file keeps the discovered targets
        proc.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(line.get("event") == "config_reloaded" for line in proc.lines()), 20)
        reloaded = next(line for line in proc.lines() if line.get("event") == "config_reloaded")
        assert reloaded["removed"] == [] and reloaded["added"] == []
        assert proc.terminate() < 10 and proc.proc.returncode == 0
    finally:
        store.close()


def test_bad_annotations_are_refused_with_the_service_named() -> None:
    settings = KubernetesDiscoverySettings(in_cluster=True)

    def svc(**notes: str) -> SimpleNamespace:
        return SimpleNamespace(
            metadata=SimpleNamespace(namespace="ns", name="svc", annotations={f"hulk-ops.io/{k}": v
                                                                              for k, v in notes.items()}),
            spec=SimpleNamespace(cluster_ip="None", ports=[SimpleNamespace(name="http", port=8080)]))

    assert discovery.target_from_service(svc(), lambda *_: None, settings) is None
    made = discovery.target_from_service(svc(kind="http", path="/healthz", port="http"), lambda *_: None, settings)
    assert made is not None and made.url == "http://svc.ns.svc:8080/healthz" and made.origin == "kubernetes: ns/svc"
    for notes, message in [({"kind": "mongo"}, "unknown kind 'mongo'"),
                           ({"kind": "redis", "port": "grpc"}, "no port named 'grpc'"),
                           ({"kind": "redis", "labels": "oops"}, "'oops' is not key=value"),
                           ({"kind": "redis", "secret": "gone"}, "no Secret ns/gone"),
                           ({"kind": "redis", "interval": "0"}, "interval_s")]:
        with pytest.raises(ValueError, match="service ns/svc") as err:
            discovery.target_from_service(svc(**notes), lambda *_: None, settings)
        assert message in str(err.value)
    static = parse_config("targets: [{name: a, kind: redis, url: 'redis://h:1'}]")
    dep = discovery.target_from_service(svc(kind="redis", **{"depends-on": "nowhere"}), lambda *_: None, settings)
    merged, clashes, problems = discovered.merge(static, [dep])
    assert [t.name for t in merged.targets] == ["a"] and clashes == []
    assert problems == ["kubernetes: ns/svc: depends-on: unknown target(s) nowhere"]
