"""The RunPod simulator's pieces without a server: the small GraphQL reader and the account state."""

from __future__ import annotations

import pytest

from sandbox import graphql_lite, runpod_graphql
from sandbox.runpod_state import NO_FREE_GPUS, NO_INSTANCES, CloudError, RunpodCloud

A100, L40S = "NVIDIA A100-SXM4-80GB", "NVIDIA L40S"


def test_parse_reads_what_the_sdk_sends() -> None:
    op = graphql_lite.parse('''
        mutation {
          podFindAndDeployOnDemand(
            input: { name: "a \\"quoted\\" name", cloudType: ALL, gpuCount: 2, dataCenterId: null,
                     env: [{ key: "A", value: "1" }], startSsh: true, minDownload: 1.5 }
          ) { id machine { podHostId } }
        }''')
    (deploy,) = op.fields
    assert op.kind == "mutation"
    assert deploy.args["input"] == {"name": 'a "quoted" name', "cloudType": "ALL", "gpuCount": 2,
                                    "dataCenterId": None, "env": [{"key": "A", "value": "1"}], "startSsh": True,
                                    "minDownload": 1.5}
    assert [f.name for f in deploy.fields] == ["id", "machine"]
    assert deploy.fields[1].fields[0].name == "podHostId"


def test_parse_aliases_variables_and_comments() -> None:
    op = graphql_lite.parse("query Q($id: String!) { # a comment\n first: pod(input: {podId: $id}) { id } }",
                            {"id": "abc"})
    assert (op.kind, op.name) == ("query", "Q")
    assert (op.fields[0].key, op.fields[0].args) == ("first", {"input": {"podId": "abc"}})


@pytest.mark.parametrize(("text", "message"), [
    ("{ myself { id }", "Expected }"),
    ("{ ...frag }", "fragments are not supported"),
    ("{ pod(input: {podId: $missing}) { id } }", 'Variable "$missing" was not provided.'),
    ("", "Must provide query string."),
])
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(graphql_lite.GraphQLError, match=message.replace("$", r"\$")):
        graphql_lite.parse(text)


def test_projection_returns_only_what_was_asked_and_rejects_unknown_fields() -> None:
    cloud = RunpodCloud()
    status, body = runpod_graphql.answer(cloud, {"query": "{ myself { pods { id desiredStatus } } }"})
    assert status == 200
    assert body["data"]["myself"]["pods"][0] == {"id": "k3x9f0a2b7c1d4", "desiredStatus": "RUNNING"}
    status, body = runpod_graphql.answer(cloud, {"query": "{ myself { pods } }"})
    assert (status, body["errors"][0]["message"]) == (400, 'Field of type "Pod" must have a selection of subfields.')
    status, body = runpod_graphql.answer(cloud, {"query": "{ podStop(input: {podId: \"x\"}) { id } }"})
    assert body["errors"][0]["message"] == 'Cannot query field "podStop" on type "Query".'


def test_seeded_account_costs_5_26_per_hour_with_one_idle_pod() -> None:
    cloud = RunpodCloud()
    running = [p for p in cloud.pods.values() if p.running]
    assert round(sum(p.cost_per_hr for p in running), 2) == 5.26
    assert [p.name for p in running if p.gpu_util_pct == 0] == ["sd-inference-4090"]
    assert cloud.gpu_types[L40S].stock_status is None


def test_deploy_takes_stock_and_stop_gives_it_back() -> None:
    cloud = RunpodCloud()
    pod = cloud.deploy({"gpuTypeId": A100, "gpuCount": 2, "imageName": "img", "cloudType": "SECURE"})
    assert (pod.cost_per_hr, cloud.gpu_types[A100].available) == (3.78, 4)
    cloud.stop(pod.id)
    assert (pod.desired_status, cloud.gpu_types[A100].available) == ("EXITED", 6)
    cloud.gpu_types[A100].available = 0
    with pytest.raises(CloudError, match=NO_FREE_GPUS):
        cloud.resume(pod.id)
    cloud.terminate(pod.id)
    assert pod.id not in cloud.pods


@pytest.mark.parametrize("spec", [
    {"gpuTypeId": L40S, "imageName": "img"},                      # out of stock
    {"gpuTypeId": "NVIDIA B999", "imageName": "img"},             # no such type
    {"gpuTypeId": A100, "gpuCount": 9, "imageName": "img"},       # more than fit a machine
])
def test_deploy_refusals_use_runpods_message(spec: dict) -> None:
    with pytest.raises(CloudError, match=NO_INSTANCES[:40]):
        RunpodCloud().deploy(spec)


def test_spot_bid_below_the_minimum_is_refused() -> None:
    cloud = RunpodCloud()
    with pytest.raises(CloudError, match="below the minimum bid"):
        cloud.deploy({"gpuTypeId": A100, "imageName": "img", "bidPerGpu": 0.5}, interruptable=True)
    pod = cloud.deploy({"gpuTypeId": A100, "imageName": "img", "bidPerGpu": 1.0}, interruptable=True)
    assert (pod.pod_type, pod.cost_per_hr) == ("INTERRUPTABLE", 1.0)


def test_jobs_wait_for_healthy_workers_and_health_counts_them() -> None:
    cloud = RunpodCloud()
    endpoint = cloud.endpoints["sdxl3n8b5t1c6y"]
    endpoint.workers["running"] = 0
    job = cloud.submit(endpoint.id, {"input": {"prompt": "x"}})
    endpoint.backlog = 10
    assert cloud.health(endpoint.id)["jobs"]["inQueue"] == 11
    endpoint.workers["idle"] = 1
    cloud.advance(endpoint)
    assert job.status == "IN_PROGRESS"
    cloud.advance(endpoint, now=job.started_at + endpoint.job_duration_s + 0.001)
    assert (job.status, job.output["echo"]) == ("COMPLETED", {"prompt": "x"})
    assert cloud.health(endpoint.id)["jobs"]["completed"] == 5311
