"""The simulator's objects against the 1.37 OpenAPI schema (strict) and the client's strict models; its patch
formats and list selectors; and the probe's metric functions over those objects. No servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import kubernetes_validate
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from hulk_ops.probes import k8s_metrics as km
from sandbox import k8s_objects as ko
from sandbox import k8s_updates as updates
from sandbox.k8s_cluster import ApiError, Cluster
from sandbox.k8s_listing import paginate, select
from sandbox.k8s_patch import JSON_PATCH, MERGE, STRATEGIC, PatchError, apply_patch


@pytest.fixture
def cluster() -> Cluster:
    """Every state at once: a crash loop, a NotReady node, a short deployment, pods still starting."""
    c = Cluster()
    updates.crashloop(c, "ml", deployment="embedder")
    updates.set_node_ready(c, "hulk-cpu-1", False)
    updates.make_short(c, "hulk-prod", "graph-writer")
    c.ready_delay_s = 60
    updates.update_scale(c, "ml", "reranker", {"metadata": {}, "spec": {"replicas": 3}}, dry_run=False)
    return c


def models(data: dict, klass: str):
    """Deserialize like the client does with a response body."""
    return ApiClient().deserialize(json.dumps(data), klass, "application/json")


def test_every_object_passes_the_strict_schema(cluster: Cluster) -> None:
    objects = [*cluster.node_items(), *cluster.pod_items(None), *cluster.deployment_items(None),
               *cluster.event_items(None), *cluster.namespace_items(),
               ko.scale_of(cluster.render_deployment("ml", "embedder")),
               ko.listing("PodList", "v1", cluster.pod_items("ml"), str(cluster.rv))]
    assert len(objects) > 40
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37.0", strict=True)


def test_lists_deserialize_into_the_clients_strict_models(cluster: Cluster) -> None:
    rv = str(cluster.rv)
    nodes = models(ko.listing("NodeList", "v1", cluster.node_items(), rv), "V1NodeList")
    pods = models(ko.listing("PodList", "v1", cluster.pod_items(None), rv), "V1PodList")
    deployments = models(ko.listing("DeploymentList", "apps/v1", cluster.deployment_items(None), rv),
                         "V1DeploymentList")
    events = models(ko.listing("EventList", "v1", cluster.event_items(None), rv), "CoreV1EventList")
    assert isinstance(nodes.items[0], client.V1Node) and len(nodes.items) == 3
    assert isinstance(events.items[0].involved_object, client.V1ObjectReference)
    assert models(ko.K8S_VERSION, "VersionInfo").git_version == "v1.33.4"
    now = datetime.now(UTC)
    pod_values, problems = km.pod_metrics(pods.items, now, pending_grace_s=3600)
    # reranker 1 -> 3 with GPUs 4/4 taken after the first extra one: one starting, one unschedulable
    assert (pod_values["pods"], pod_values["pods_crashloop"], pod_values["pods_pending"]) == (16, 1, 2)
    assert pod_values["pods_pending_stuck"] == 0 and [p["reason"] for p in problems] == ["CrashLoopBackOff"]
    node_values, rows = km.node_metrics(nodes.items, pods.items)
    assert (node_values["nodes_not_ready"], node_values["node.hulk-cpu-1.ready"]) == (1, 0)
    assert node_values["node.hulk-gpu-1.gpu_requests"] == 4 and node_values["gpu_requests_pct"] == 100
    deploy_values, short = km.deployment_metrics(deployments.items)
    assert {(s["namespace"], s["name"]) for s in short} >= {("ml", "embedder"), ("hulk-prod", "graph-writer"),
                                                            ("ml", "reranker")}
    assert deploy_values["deployments_short"] == len(short)
    count, rows = km.recent_warnings(events.items, now, 3600, limit=2)
    assert count >= 4 and len(rows) == 2


def test_pod_requests_follow_the_scheduler_rule() -> None:
    pod = client.V1Pod(spec=client.V1PodSpec(
        containers=[client.V1Container(name="a", resources=client.V1ResourceRequirements(
            requests={"cpu": "250m", "memory": "1Gi"})),
            client.V1Container(name="b", resources=client.V1ResourceRequirements(requests={"cpu": "250m"}))],
        init_containers=[client.V1Container(name="init", resources=client.V1ResourceRequirements(
            requests={"cpu": "2", "memory": "512Mi"}))],
        overhead={"cpu": "100m"}))
    assert km.pod_requests(pod) == {"cpu": 2.1, "memory": 2**30}


def test_scale_validation_and_dry_run() -> None:
    c = Cluster()
    rv = c.render_deployment("ml", "embedder")["metadata"]["resourceVersion"]
    answer = updates.update_scale(c, "ml", "embedder", {"metadata": {}, "spec": {"replicas": 0}}, dry_run=True)
    assert answer["spec"]["replicas"] == 0 and c.render_deployment("ml", "embedder")["spec"]["replicas"] == 2
    assert c.render_deployment("ml", "embedder")["metadata"]["resourceVersion"] == rv
    for bad in (-1, "3", True, 2.5):
        with pytest.raises(ApiError) as caught:
            updates.update_scale(c, "ml", "embedder", {"metadata": {}, "spec": {"replicas": bad}}, dry_run=True)
        assert caught.value.code == 422
    with pytest.raises(ApiError) as renamed:
        updates.update_scale(c, "ml", "embedder", {"metadata": {"name": "other"}, "spec": {"replicas": 1}}, False)
    assert renamed.value.code == 400


@pytest.mark.parametrize("patch,content_type,expected", [
    ({"a": {"b": None, "c": 2}}, MERGE, {"a": {"c": 2}, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}),
    ({"l": [{"name": "x", "v": 9}]}, MERGE, {"a": {"b": 1}, "l": [{"name": "x", "v": 9}]}),
    ({"l": [{"name": "y", "v": 9}, {"name": "z"}]}, STRATEGIC,
     {"a": {"b": 1}, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 9}, {"name": "z"}]}),
    ({"l": [{"name": "x", "$patch": "delete"}]}, STRATEGIC, {"a": {"b": 1}, "l": [{"name": "y", "v": 2}]}),
    ([{"op": "replace", "path": "/l/1/v", "value": 5}, {"op": "remove", "path": "/a/b"}], JSON_PATCH,
     {"a": {}, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 5}]}),
    ([{"op": "add", "path": "/l/-", "value": {"name": "z"}}, {"op": "test", "path": "/a/b", "value": 1},
      {"op": "copy", "from": "/a", "path": "/c"}, {"op": "move", "from": "/c/b", "path": "/d"}], JSON_PATCH,
     {"a": {"b": 1}, "c": {}, "d": 1, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 2}, {"name": "z"}]}),
])
def test_patch_formats(patch, content_type, expected) -> None:
    doc = {"a": {"b": 1}, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}
    assert apply_patch(doc, patch, content_type) == expected
    assert doc == {"a": {"b": 1}, "l": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}  # never changed in place


@pytest.mark.parametrize("patch,content_type", [
    ([{"op": "test", "path": "/a/b", "value": 2}], JSON_PATCH),
    ([{"op": "replace", "path": "/nope", "value": 2}], JSON_PATCH),
    ([{"op": "remove", "path": "/l/7"}], JSON_PATCH),
    ([{"path": "/a"}], JSON_PATCH),
    ({"op": "add"}, JSON_PATCH),
    ([1], MERGE),
])
def test_bad_patches_are_refused(patch, content_type) -> None:
    with pytest.raises(PatchError):
        apply_patch({"a": {"b": 1}, "l": []}, patch, content_type)


def test_selectors_and_pages() -> None:
    items = [{"metadata": {"name": f"p{i}", "labels": {"app": "a" if i % 2 else "b", **({"gpu": "1"} if i < 2
                                                                                          else {})}},
              "status": {"phase": "Running" if i else "Pending"}} for i in range(6)]
    names = lambda found: [i["metadata"]["name"] for i in found]  # noqa: E731
    assert names(select(items, {"labelSelector": "app=a"})) == ["p1", "p3", "p5"]
    assert names(select(items, {"labelSelector": "app!=a,gpu"})) == ["p0"]
    assert names(select(items, {"labelSelector": "app in (a, b),!gpu"})) == ["p2", "p3", "p4", "p5"]
    assert names(select(items, {"labelSelector": "app notin (a)"})) == ["p0", "p2", "p4"]
    assert names(select(items, {"fieldSelector": "status.phase=Pending"})) == ["p0"]
    assert names(select(items, {"fieldSelector": "status.phase!=Pending,metadata.name==p3"})) == ["p3"]
    page, cont, remaining = paginate(items, {"limit": "4"}, rv=7)
    assert names(page) == ["p0", "p1", "p2", "p3"] and remaining == 2
    rest, last, _ = paginate(items, {"limit": "4", "continue": cont}, rv=7)
    assert names(rest) == ["p4", "p5"] and last is None
    with pytest.raises(ApiError):
        paginate(items, {"continue": "garbage"}, rv=7)
