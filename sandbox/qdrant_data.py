"""The Qdrant simulator's domain state: collections and how Qdrant's REST API renders them.

Shapes follow Qdrant 1.19's OpenAPI (`CollectionInfo`, `VersionInfo`, `ClusterStatus`,
`TelemetryData`) closely enough that qdrant-client's pydantic models accept them unmodified.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = "1.19.0"
COMMIT = "5f0c4a51c2b0e6b7f3d9a8e1c4b2d6f7a9e3c1b5"
STATUSES = ("green", "yellow", "grey", "red")
DEFAULT_RED_ERROR = "Service internal error: Failed to optimize segment: No space left on device (os error 28)"
# Qdrant indexes a segment once its vectors exceed indexing_threshold kB (1 kB = one 256-dim vector).
INDEXING_THRESHOLD_KB = 10_000


@dataclass
class SimCollection:
    name: str
    vector_size: int
    distance: str = "Cosine"
    points: int = 0
    indexed: int = 0
    segments: int = 2
    status: str = "green"
    optimizer_error: str | None = None
    payload_schema: dict[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    point_ids: set[Any] = field(default_factory=set)  # ids upserted through the API (seeded points have none)

    def set_points(self, points: int, indexed: int | None = None, segments: int | None = None) -> None:
        self.points = max(0, int(points))
        if indexed is None:
            threshold_vectors = INDEXING_THRESHOLD_KB * 256 // max(self.vector_size, 1)
            indexed = self.points if self.points >= threshold_vectors else 0
        self.indexed = min(max(0, int(indexed)), self.points)
        if segments is not None:
            self.segments = max(1, int(segments))

    def set_status(self, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown collection status {status!r} (known: {', '.join(STATUSES)})")
        self.status = status
        self.optimizer_error = (error or DEFAULT_RED_ERROR) if status == "red" else None

    def info(self) -> dict[str, Any]:
        """`GET /collections/{name}` result (CollectionInfo)."""
        return {
            "status": self.status,
            "optimizer_status": {"error": self.optimizer_error} if self.optimizer_error else "ok",
            "indexed_vectors_count": self.indexed,
            "points_count": self.points,
            "segments_count": self.segments,
            "config": {
                "params": {
                    "vectors": {"size": self.vector_size, "distance": self.distance},
                    "shard_number": 1,
                    "replication_factor": 1,
                    "write_consistency_factor": 1,
                    "on_disk_payload": True,
                },
                "hnsw_config": {
                    "m": 16, "ef_construct": 100, "full_scan_threshold": 10_000,
                    "max_indexing_threads": 0, "on_disk": False,
                },
                "optimizer_config": {
                    "deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
                    "max_segment_size": None, "memmap_threshold": None,
                    "indexing_threshold": INDEXING_THRESHOLD_KB, "flush_interval_sec": 5,
                    "max_optimization_threads": None,
                },
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1},
                "quantization_config": None,
                "strict_mode_config": {"enabled": False},
            },
            "payload_schema": {
                name: {"data_type": kind, "points": self.points} for name, kind in self.payload_schema.items()
            },
            "update_queue": {"length": 0},
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


def seed_collections() -> dict[str, SimCollection]:
    """Three collections of a retrieval stack: documents, images, conversation memory."""
    now = datetime.now(UTC)
    seeded = [
        SimCollection(
            "docs-embeddings", vector_size=768, points=1_200_000, indexed=1_187_328, segments=8,
            payload_schema={"doc_id": "keyword", "tenant": "keyword", "updated_at": "datetime"},
            created_at=now - timedelta(days=214),
        ),
        SimCollection(
            "images-clip", vector_size=512, points=356_410, indexed=356_410, segments=6,
            payload_schema={"label": "keyword", "width": "integer", "height": "integer"},
            created_at=now - timedelta(days=97),
        ),
        SimCollection(
            "chat-memory", vector_size=1536, distance="Dot", points=48_213, indexed=41_920, segments=4,
            payload_schema={"session_id": "keyword", "ts": "datetime"},
            created_at=now - timedelta(days=12),
        ),
    ]
    return {c.name: c for c in seeded}


def collection_from_request(name: str, body: dict[str, Any]) -> SimCollection:
    """`PUT /collections/{name}` body -> a new, empty collection (single unnamed vector config only)."""
    vectors = body.get("vectors")
    if not isinstance(vectors, dict) or not isinstance(vectors.get("size"), int) or "distance" not in vectors:
        raise ValueError("Wrong input: expected vectors config {size, distance} (named vectors are not simulated)")
    if vectors["distance"] not in ("Cosine", "Euclid", "Dot", "Manhattan"):
        raise ValueError(f"Wrong input: unknown distance {vectors['distance']!r}")
    return SimCollection(name, vector_size=vectors["size"], distance=vectors["distance"], segments=2)


def cluster_status(peers: int, pending_operations: int) -> dict[str, Any]:
    """`GET /cluster` result: disabled for a single node, else this node (peer 1) leads `peers` peers."""
    if peers <= 0:
        return {"status": "disabled"}
    return {
        "status": "enabled",
        "peer_id": 1,
        "peers": {str(i): {"uri": f"http://qdrant-{i - 1}.qdrant-headless:6335/"} for i in range(1, peers + 1)},
        "raft_info": {
            "term": 3, "commit": 1_482, "pending_operations": pending_operations,
            "leader": 1, "role": "Leader", "is_voter": True,
        },
        "consensus_thread_status": {
            "consensus_thread_status": "working",
            "last_update": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        "message_send_failures": {},
    }


def telemetry(started: datetime, collections: int) -> dict[str, Any]:
    """`GET /telemetry` result (details level 0)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "hulk-ops/qdrant-sim")),
        "app": {
            "name": "qdrant",
            "version": VERSION,
            "startup": started.isoformat().replace("+00:00", "Z"),
            "jwt_rbac": False,
        },
        "collections": {"number_of_collections": collections},
    }
