"""The simulator's Services and Secrets, read through the official kubernetes client: lists (all namespaces and
one), get, a Secret's base64 data, and a watch that sees ADDED / MODIFIED / DELETED."""

from __future__ import annotations

import base64
import threading

import pytest
from kubernetes import client, watch

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_k8s"]


def test_services_and_secrets_through_the_client(k8s_sim, k8s_api) -> None:
    k8s_sim.control("put_service", {"namespace": "hulk-prod", "name": "cache",
                                    "annotations": {"hulk-ops.io/kind": "redis"}, "labels": {"app": "cache"},
                                    "cluster_ip": "127.0.0.1", "ports": [{"name": "redis", "port": 6379}]})
    k8s_sim.control("put_service", {"namespace": "ml", "name": "vectors", "ports": [{"port": 6333}]})
    k8s_sim.control("put_secret", {"namespace": "hulk-prod", "name": "cache-auth", "data": {"password": "pw!"}})
    core = client.CoreV1Api(k8s_api)
    every = core.list_service_for_all_namespaces()
    assert [(s.metadata.namespace, s.metadata.name) for s in every.items] == [("hulk-prod", "cache"),
                                                                              ("ml", "vectors")]
    prod = core.list_namespaced_service("hulk-prod", label_selector="app=cache")
    [svc] = prod.items
    assert svc.metadata.annotations == {"hulk-ops.io/kind": "redis"}
    assert svc.spec.cluster_ip == "127.0.0.1" and svc.spec.ports[0].port == 6379
    assert core.read_namespaced_service("vectors", "ml").spec.ports[0].port == 6333
    secret = core.read_namespaced_secret("cache-auth", "hulk-prod")
    assert base64.b64decode(secret.data["password"]).decode() == "pw!"
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_secret("nope", "hulk-prod")
    assert missing.value.status == 404

    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        for event in w.stream(core.list_namespaced_service, "hulk-prod",
                              resource_version=every.metadata.resource_version, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=follow)
    thread.start()
    k8s_sim.control("put_service", {"namespace": "ml", "name": "elsewhere", "ports": [{"port": 1}]})
    k8s_sim.control("put_service", {"namespace": "hulk-prod", "name": "db", "ports": [{"port": 5432}]})
    k8s_sim.control("put_service", {"namespace": "hulk-prod", "name": "db", "ports": [{"port": 5433}]})
    k8s_sim.control("delete_service", {"namespace": "hulk-prod", "name": "db"})
    thread.join(15)
    assert not thread.is_alive()
    assert seen == [("ADDED", "db"), ("MODIFIED", "db"), ("DELETED", "db")]
