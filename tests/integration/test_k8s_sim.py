"""The Kubernetes API simulator through the official client: the scale subresource, patches, dry runs,
resourceVersion conflicts, Status errors, paging; and the standalone process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator
from sandbox.simbase import free_port

pytest_plugins = ["tests.fixtures_k8s"]
NS, NAME = "hulk-prod", "api-gateway"
SELECTOR = "app.kubernetes.io/name=api-gateway"


def pods(api: client.ApiClient) -> list[client.V1Pod]:
    return client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=SELECTOR).items


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_read_scale(k8s_api: client.ApiClient) -> None:
    scale = client.AppsV1Api(k8s_api).read_namespaced_deployment_scale(NAME, NS)
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (3, 3, SELECTOR)
    assert scale.metadata.resource_version.isdigit()


@pytest.mark.parametrize("body,content_type,replicas", [
    ({"spec": {"replicas": 5}}, "application/merge-patch+json", 5),
    ({"spec": {"replicas": 1}}, None, 1),  # a dict body: the client sends strategic-merge-patch
    ([{"op": "replace", "path": "/spec/replicas", "value": 4}], None, 4),  # a list: json-patch
])
def test_patch_scale_changes_replicas_and_pods(k8s_api: client.ApiClient, body, content_type, replicas) -> None:
    apps = client.AppsV1Api(k8s_api)
    before = apps.read_namespaced_deployment_scale(NAME, NS).metadata.resource_version
    extra = {"_content_type": content_type} if content_type else {}
    scale = apps.patch_namespaced_deployment_scale(NAME, NS, body, **extra)
    assert (scale.spec.replicas, scale.status.replicas) == (replicas, replicas)
    assert int(scale.metadata.resource_version) > int(before)
    assert len(pods(k8s_api)) == replicas
    deployment = apps.read_namespaced_deployment(NAME, NS)
    assert (deployment.spec.replicas, deployment.status.available_replicas) == (replicas, replicas)
    assert deployment.metadata.generation == 2


def test_replace_scale_with_stale_resource_version_is_a_conflict(k8s_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s_api)
    scale = apps.read_namespaced_deployment_scale(NAME, NS)
    apps.patch_namespaced_deployment_scale(NAME, NS, {"spec": {"replicas": 4}})  # someone else scaled meanwhile
    scale.spec.replicas = 6
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment_scale(NAME, NS, scale)
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Conflict", 409)
    assert "the object has been modified" in body["message"]
    assert apps.read_namespaced_deployment_scale(NAME, NS).spec.replicas == 4
    fresh = apps.read_namespaced_deployment_scale(NAME, NS)
    fresh.spec.replicas = 6
    assert apps.replace_namespaced_deployment_scale(NAME, NS, fresh).spec.replicas == 6
    assert len(pods(k8s_api)) == 6


def test_stale_resource_version_inside_a_patch_is_a_conflict(k8s_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s_api)
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment_scale(NAME, NS, {"metadata": {"resourceVersion": "1"},
                                                          "spec": {"replicas": 9}})
    assert caught.value.status == 409
    assert apps.read_namespaced_deployment_scale(NAME, NS).spec.replicas == 3


def test_dry_run_validates_answers_and_changes_nothing(k8s_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s_api)
    before = apps.read_namespaced_deployment_scale(NAME, NS)
    names = sorted(p.metadata.name for p in pods(k8s_api))
    answer = apps.patch_namespaced_deployment_scale(NAME, NS, {"spec": {"replicas": 7}}, dry_run="All")
    assert answer.spec.replicas == 7
    after = apps.read_namespaced_deployment_scale(NAME, NS)
    assert (after.spec.replicas, after.metadata.resource_version) == (3, before.metadata.resource_version)
    assert sorted(p.metadata.name for p in pods(k8s_api)) == names
    before.spec.replicas = 8
    assert apps.replace_namespaced_deployment_scale(NAME, NS, before, dry_run="All").spec.replicas == 8
    assert apps.read_namespaced_deployment_scale(NAME, NS).spec.replicas == 3
    with pytest.raises(ApiException) as invalid:  # a dry run still validates
        apps.patch_namespaced_deployment_scale(NAME, NS, {"spec": {"replicas": -1}}, dry_run="All")
    assert invalid.value.status == 422
    assert "spec.replicas" in status_of(invalid.value)["message"]


def test_patch_the_deployment_itself(k8s_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s_api)
    updated = apps.patch_namespaced_deployment(NAME, NS, {"spec": {"replicas": 2}})
    assert (updated.spec.replicas, updated.status.replicas, updated.metadata.generation) == (2, 2, 2)
    assert len(pods(k8s_api)) == 2
    with pytest.raises(ApiException) as immutable:
        apps.patch_namespaced_deployment(NAME, NS, {"spec": {"selector": {"matchLabels": {"app": "x"}}}})
    assert immutable.value.status == 422
    events = client.CoreV1Api(k8s_api).list_namespaced_event(NS, field_selector="reason=ScalingReplicaSet").items
    assert [e.message for e in events][-1].endswith("from 3 to 2")
    dry = apps.patch_namespaced_deployment(NAME, NS, {"spec": {"replicas": 9}}, dry_run="All")
    assert dry.spec.replicas == 9 and len(pods(k8s_api)) == 2
    current = apps.read_namespaced_deployment(NAME, NS)
    stale = apps.read_namespaced_deployment(NAME, NS)
    current.spec.replicas = 3
    assert apps.replace_namespaced_deployment(NAME, NS, current).spec.replicas == 3
    stale.spec.replicas = 1
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment(NAME, NS, stale)
    assert conflict.value.status == 409
    assert len(pods(k8s_api)) == 3


def test_errors_are_status_objects(k8s_api: client.ApiClient, k8s_sim: KubernetesSimulator, make_k8s_api) -> None:
    apps = client.AppsV1Api(k8s_api)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment_scale("nope", NS)
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'deployments.apps "nope" not found'
    with pytest.raises(ApiException) as unsupported:
        apps.patch_namespaced_deployment_scale(NAME, NS, {"spec": {"replicas": 2}},
                                               _content_type="application/apply-patch+yaml")
    assert unsupported.value.status == 415
    with pytest.raises(ApiException) as bad_dry_run:
        apps.patch_namespaced_deployment_scale(NAME, NS, {"spec": {"replicas": 2}}, dry_run="Some")
    assert bad_dry_run.value.status == 400
    with pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(make_k8s_api(k8s_sim.url, token="wrong")).list_node()
    assert unauthorized.value.status == 401
    assert status_of(unauthorized.value)["reason"] == "Unauthorized"


def test_lists_page_and_select(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    first = core.list_pod_for_all_namespaces(limit=5)
    assert len(first.items) == 5 and first.metadata.remaining_item_count == 9
    rest = core.list_pod_for_all_namespaces(limit=50, _continue=first.metadata.var_continue)
    assert len(rest.items) == 9 and not rest.metadata.var_continue
    on_gpu = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=hulk-gpu-1").items
    assert {p.metadata.namespace for p in on_gpu} == {"ml"}
    staging = core.list_namespaced_pod("hulk-staging", label_selector="app.kubernetes.io/name in (api-gateway,x)")
    assert len(staging.items) == 1
    assert [n.metadata.name for n in core.list_namespace().items] == [
        "default", "hulk-prod", "hulk-staging", "kube-system", "ml"]


def test_standalone_process_serves_until_sigterm(make_k8s_api) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.k8s_sim", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line and DEFAULT_TOKEN in line
        api = make_k8s_api(f"http://127.0.0.1:{port}")
        assert client.VersionApi(api).get_code().git_version == "v1.33.4"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
