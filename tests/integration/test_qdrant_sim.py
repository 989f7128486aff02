"""The Qdrant simulator speaks enough of Qdrant's REST API for qdrant-client and plain HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from sandbox.qdrant_data import VERSION
from sandbox.simbase import free_port

pytest_plugins = ["tests.fixtures_qdrant"]


def test_plain_http_endpoints_answer_like_qdrant(qdrant_sim):
    with httpx.Client(base_url=qdrant_sim.url, timeout=2) as http:
        root = http.get("/").json()
        assert root["title"] == "qdrant - vector search engine" and root["version"] == VERSION
        for path in ("/healthz", "/livez"):
            answer = http.get(path)
            assert (answer.status_code, answer.text) == (200, "healthz check passed")
            assert answer.headers["content-type"].startswith("text/plain")
        assert http.get("/readyz").text == "all shards are ready"
        listing = http.get("/collections").json()
        assert listing["status"] == "ok" and isinstance(listing["time"], float)
        assert [c["name"] for c in listing["result"]["collections"]] == [
            "docs-embeddings", "images-clip", "chat-memory"]
        missing = http.get("/collections/nope")
        assert missing.status_code == 404
        assert missing.json()["status"]["error"] == "Not found: Collection `nope` doesn't exist!"

        qdrant_sim.control("set_ready", {"ready": False})
        not_ready = http.get("/readyz")
        assert (not_ready.status_code, not_ready.text) == (503, "some shards are not ready")


async def test_client_round_trip(qdrant_sim):
    client = AsyncQdrantClient(url=qdrant_sim.url, check_compatibility=False, timeout=2)
    try:
        assert (await client.info()).version == VERSION
        info = await client.get_collection("docs-embeddings")
        assert info.status == models.CollectionStatus.GREEN
        assert info.optimizer_status == models.OptimizersStatusOneOf.OK
        assert (info.points_count, info.segments_count) == (1_200_000, 8)
        assert info.config.hnsw_config.m == 16 and info.config.wal_config.wal_capacity_mb == 32
        assert info.payload_schema["tenant"].data_type == models.PayloadSchemaType.KEYWORD

        assert await client.create_collection(
            "t-sim", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
        assert await client.collection_exists("t-sim")
        update = await client.upsert("t-sim", points=[
            models.PointStruct(id=i, vector=[1.0, 0.0, 0.5]) for i in (1, 2, 3, 2)])
        assert update.status == models.UpdateStatus.COMPLETED
        assert (await client.count("t-sim")).count == 3
        with pytest.raises(UnexpectedResponse) as wrong_dim:
            await client.upsert("t-sim", points=[models.PointStruct(id=9, vector=[1.0, 2.0])])
        assert wrong_dim.value.status_code == 400
        with pytest.raises(UnexpectedResponse) as exists:
            await client.create_collection("t-sim", vectors_config=models.VectorParams(
                size=3, distance=models.Distance.DOT))
        assert b"already exists" in exists.value.content
        assert await client.delete_collection("t-sim")
        assert not await client.collection_exists("t-sim")

        telemetry = (await client.http.service_api.telemetry()).result
        assert telemetry.app.version == VERSION and telemetry.collections.number_of_collections == 3
        assert (await client.http.distributed_api.cluster_status()).result.status == "disabled"
    finally:
        await client.close()


async def test_red_collection_carries_the_optimizer_error(qdrant_sim):
    qdrant_sim.control("set_status", {"collection": "images-clip", "status": "red"})
    client = AsyncQdrantClient(url=qdrant_sim.url, check_compatibility=False)
    try:
        info = await client.get_collection("images-clip")
    finally:
        await client.close()
    assert info.status == models.CollectionStatus.RED
    assert "No space left on device" in info.optimizer_status.error


def test_api_key_semantics(qdrant_sim):
    qdrant_sim.control("require_api_key", {"key": "rw-key", "read_only_key": "ro-key"})
    with httpx.Client(base_url=qdrant_sim.url, timeout=2) as http:
        for path in ("/", "/healthz", "/livez", "/readyz"):
            assert http.get(path).status_code == 200, path
        none = http.get("/collections")
        assert (none.status_code, none.text) == (401, "Must provide an API key or an Authorization bearer token")
        wrong = http.get("/collections", headers={"api-key": "nope"})
        assert (wrong.status_code, wrong.text) == (401, "Invalid API key or JWT")
        assert http.get("/collections", headers={"api-key": "rw-key"}).status_code == 200
        assert http.get("/collections", headers={"Authorization": "Bearer rw-key"}).status_code == 200
        ro = {"api-key": "ro-key"}
        assert http.get("/collections/chat-memory", headers=ro).status_code == 200
        assert http.post("/collections/chat-memory/points/count", headers=ro, json={}).status_code == 200
        assert http.delete("/collections/chat-memory", headers=ro).status_code == 403
        assert http.delete("/collections/chat-memory", headers={"api-key": "rw-key"}).json()["result"] is True

    qdrant_sim.control("require_api_key", {"key": None})
    assert httpx.get(f"{qdrant_sim.url}/collections", timeout=2).status_code == 200


def test_control_rejects_unknown_actions_and_values(qdrant_sim):
    with pytest.raises(KeyError):
        qdrant_sim.control("explode", {})
    with pytest.raises(ValueError, match="unknown collection status"):
        qdrant_sim.control("set_status", {"collection": "chat-memory", "status": "purple"})
    with pytest.raises(ValueError, match="no collection"):
        qdrant_sim.control("set_points", {"collection": "nope", "points": 1})
    added = qdrant_sim.control("add_collection", {"name": "audio", "vector_size": 256, "points": 50_000})
    assert added == {"name": "audio", "points": 50_000}
    assert qdrant_sim.collections["audio"].indexed == 50_000  # above the indexing threshold


def test_standalone_process_answers_and_stops_on_sigterm():
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "sandbox.qdrant_sim", "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            line = proc.stdout.readline()  # printed once listening
            assert line.strip() == f"qdrant simulator listening on http://127.0.0.1:{port}"
            answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            assert answer.json()["version"] == VERSION
            assert httpx.get(f"http://127.0.0.1:{port}/collections", timeout=2).json()["status"] == "ok"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
