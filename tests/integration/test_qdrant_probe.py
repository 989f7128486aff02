"""The Qdrant probe through the real qdrant-client against the Qdrant simulator."""

from __future__ import annotations

import re
import time

import orjson
from qdrant_client import AsyncQdrantClient, models

import hulk_ops.probes.qdrant as qdrant_module
from hulk_ops.entrypoints import cli
from sandbox.qdrant_data import VERSION

pytest_plugins = ["tests.fixtures_qdrant"]

SEEDED_POINTS = {"docs-embeddings": 1_200_000, "images-clip": 356_410, "chat-memory": 48_213}


async def test_up_reports_version_and_collection_metrics(qdrant_sim, qdrant_probe):
    result = await qdrant_probe(qdrant_sim.url).check()

    assert result.status == "up", result.error
    assert result.error is None
    assert result.version == VERSION
    assert 0 < result.latency_ms < 1000
    m = result.metrics
    assert m["collections"] == 3
    assert m["ready"] == 1
    assert m["cluster.enabled"] == 0
    for name, points in SEEDED_POINTS.items():
        assert m[f"collection.{name}.points"] == points
        assert m[f"collection.{name}.status_code"] == 0
    assert m["points_total"] == sum(SEEDED_POINTS.values())
    assert m["collection.docs-embeddings.indexed_vectors"] == 1_187_328
    assert m["collection.docs-embeddings.segments"] == 8
    assert m["collection.chat-memory.vector_size"] == 1536
    by_name = {c["name"]: c for c in result.details["collections"]}
    assert by_name["chat-memory"]["vectors"] == {"size": 1536, "distance": "Dot"}
    assert by_name["docs-embeddings"]["payload_indexes"] == ["doc_id", "tenant", "updated_at"]


async def test_every_metric_is_documented_in_the_module_docstring(qdrant_sim, qdrant_probe):
    qdrant_sim.control("set_cluster", {"peers": 3})
    result = await qdrant_probe(qdrant_sim.url, collections=["images-clip", "gone"]).check()

    doc = qdrant_module.__doc__ or ""
    for name in result.metrics:
        generic = re.sub(r"^collection\.[^.]+\.", "collection.<c>.", name)
        assert generic in doc, f"metric {name} ({generic}) is not documented in hulk_ops/probes/qdrant.py"


async def test_points_written_through_the_client_show_up(qdrant_sim, qdrant_probe):
    client = AsyncQdrantClient(url=qdrant_sim.url, check_compatibility=False)
    try:
        await client.create_collection("t-qdrant-probe", vectors_config=models.VectorParams(
            size=4, distance=models.Distance.COSINE))
        await client.upsert("t-qdrant-probe", points=[
            models.PointStruct(id=i, vector=[0.1, 0.2, 0.3, 0.4], payload={"n": i}) for i in range(25)
        ])
    finally:
        await client.close()
    probe = qdrant_probe(qdrant_sim.url)

    result = await probe.check()

    assert result.status == "up", result.error
    assert result.metrics["collections"] == 4
    assert result.metrics["collection.t-qdrant-probe.points"] == 25
    assert result.metrics["collection.t-qdrant-probe.indexed_vectors"] == 0
    assert result.metrics["points_total"] == sum(SEEDED_POINTS.values()) + 25

    qdrant_sim.control("remove_collection", {"name": "t-qdrant-probe"})
    qdrant_sim.control("set_points", {"collection": "images-clip", "points": 400_000})
    result = await probe.check()  # the same client, reused
    assert result.metrics["collections"] == 3
    assert "collection.t-qdrant-probe.points" not in result.metrics
    assert result.metrics["collection.images-clip.points"] == 400_000


async def test_red_or_yellow_collection_makes_the_target_degraded(qdrant_sim, qdrant_probe):
    probe = qdrant_probe(qdrant_sim.url)
    qdrant_sim.control("set_status", {"collection": "chat-memory", "status": "red",
                                      "error": "Service internal error: segment 7 is corrupted"})

    red = await probe.check()

    assert red.status == "degraded"
    assert red.metrics["collection.chat-memory.status_code"] == 2
    # the rule's message names the collection; the probe's note says the same, so it is said once
    assert red.error == "collection chat-memory is red: Service internal error: segment 7 is corrupted"

    qdrant_sim.control("set_status", {"collection": "chat-memory", "status": "yellow"})
    yellow = await probe.check()
    assert yellow.status == "degraded"
    assert yellow.metrics["collection.chat-memory.status_code"] == 1

    qdrant_sim.control("set_status", {"collection": "chat-memory", "status": "grey"})
    grey = await probe.check()
    assert grey.status == "up", grey.error
    assert grey.metrics["collection.chat-memory.optimizations_pending"] == 1

    qdrant_sim.control("set_status", {"collection": "chat-memory", "status": "green"})
    green = await probe.check()
    assert green.status == "up" and green.error is None


async def test_red_can_be_made_down_by_a_target_rule(qdrant_sim, qdrant_probe):
    qdrant_sim.control("set_status", {"collection": "docs-embeddings", "status": "red"})
    probe = qdrant_probe(qdrant_sim.url, rules=["collection.*.status_code >= 2 -> down"])

    result = await probe.check()

    assert result.status == "down"
    assert result.error.startswith("collection docs-embeddings is red: ")
    assert "status_code" not in result.error


async def test_not_ready_is_degraded_not_down(qdrant_sim, qdrant_probe):
    qdrant_sim.control("set_ready", {"ready": False})

    result = await qdrant_probe(qdrant_sim.url).check()

    assert result.status == "degraded"
    assert result.metrics["ready"] == 0
    assert result.error.startswith("not ready: some shards are not ready")
    assert result.metrics["collections"] == 3  # still answering
    strict = await qdrant_probe(qdrant_sim.url, rules=["ready < 1 -> down"]).check()
    assert strict.status == "down"


async def test_configured_collections_restrict_and_report_missing(qdrant_sim, qdrant_probe):
    result = await qdrant_probe(qdrant_sim.url, collections=["images-clip", "audio-wav2vec"]).check()

    assert result.status == "degraded"
    assert result.metrics["collections_missing"] == 1
    assert result.details["missing"] == ["audio-wav2vec"]
    assert [c["name"] for c in result.details["collections"]] == ["images-clip"]
    assert "collection.docs-embeddings.points" not in result.metrics
    assert result.metrics["points_total"] == SEEDED_POINTS["images-clip"]
    assert result.metrics["collections"] == 3


async def test_cluster_metrics_when_distributed(qdrant_sim, qdrant_probe):
    qdrant_sim.control("set_cluster", {"peers": 3, "pending_operations": 2})

    result = await qdrant_probe(qdrant_sim.url).check()

    assert result.metrics["cluster.enabled"] == 1
    assert result.metrics["cluster.peers"] == 3
    assert result.metrics["cluster.pending_operations"] == 2


async def test_api_key_wrong_missing_and_right(qdrant_sim, qdrant_probe):
    qdrant_sim.control("require_api_key", {"key": "s3cr3t-rw-key"})

    wrong = await qdrant_probe(qdrant_sim.url, api_key="not-the-key").check()
    missing = await qdrant_probe(qdrant_sim.url).check()
    right = await qdrant_probe(qdrant_sim.url, api_key="s3cr3t-rw-key").check()

    assert wrong.status == "down"
    assert wrong.error.startswith("authentication failed: Invalid API key or JWT (HTTP 401")
    assert "not-the-key" not in wrong.error
    assert missing.status == "down"
    assert missing.error.startswith("authentication failed: Must provide an API key")
    assert right.status == "up", right.error
    assert right.metrics["collections"] == 3


async def test_read_only_key_is_enough(qdrant_sim, qdrant_probe):
    qdrant_sim.control("require_api_key", {"key": "rw", "read_only_key": "ro-key"})

    result = await qdrant_probe(qdrant_sim.url, api_key="ro-key").check()

    assert result.status == "up", result.error


async def test_down_with_connection_refused_and_back_up(qdrant_sim, qdrant_probe):
    probe = qdrant_probe(qdrant_sim.url)
    assert (await probe.check()).status == "up"

    qdrant_sim.set_fault("down")
    down = await probe.check()
    assert down.status == "down"
    assert down.error == f"connection refused (127.0.0.1:{qdrant_sim.port})"
    assert down.metrics == {}

    qdrant_sim.set_fault(None)
    again = await probe.check()
    assert again.status == "up", again.error


async def test_down_when_the_simulator_is_stopped(qdrant_probe):
    from sandbox.qdrant_sim import QdrantSimulator

    sim = QdrantSimulator().start()
    try:
        probe = qdrant_probe(sim.url)
        assert (await probe.check()).status == "up"
    finally:
        sim.stop()

    result = await probe.check()

    assert result.status == "down"
    assert result.error == f"connection refused (127.0.0.1:{sim.port})"


async def test_down_within_timeout_when_it_stalls(qdrant_sim, qdrant_probe):
    qdrant_sim.set_fault("stall")
    probe = qdrant_probe(qdrant_sim.url, timeout_s=1.0)

    started = time.perf_counter()
    result = await probe.check()
    elapsed = time.perf_counter() - started

    assert result.status == "down"
    assert result.error == "timed out after 1.0 s"
    assert 0.9 <= elapsed < 1.0 + 1.0


async def test_slow_server_is_measured_and_flagged(qdrant_sim, qdrant_probe):
    qdrant_sim.set_fault("slow", delay_s=0.3)
    probe = qdrant_probe(qdrant_sim.url, timeout_s=5.0, rules=["latency_ms > 200"])

    result = await probe.check()

    assert result.status == "degraded"
    assert result.latency_ms >= 300
    assert "latency_ms" in result.error


def test_cli_probe_json_line(qdrant_sim, tmp_path, capsys):
    path = tmp_path / "qdrant.yaml"
    path.write_text(f"targets:\n  - name: vec\n    kind: qdrant\n    url: {qdrant_sim.url}\n    timeout_s: 2\n")

    code = cli.main(["probe", "--config", str(path), "--json"])

    line = orjson.loads(capsys.readouterr().out.strip())
    assert code == 0
    assert line["target"] == "vec" and line["kind"] == "qdrant" and line["status"] == "up"
    assert line["version"] == VERSION
    assert line["metrics"]["collection.docs-embeddings.points"] == 1_200_000
