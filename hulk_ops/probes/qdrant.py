"""Qdrant probe (qdrant-client AsyncQdrantClient over REST; httpx for the plain-text health endpoints).

Latency is one ``GET /healthz``. The version comes from ``GET /``. Metrics: ready (``/readyz``:
1 all shards ready, 0 not), collections (on the server), collections_missing (configured in
``collections:`` but absent), points_total (sum over the reported collections); per collection
collection.<c>.status_code (0 green or grey, 1 yellow: optimizing, 2 red: an operation failed),
collection.<c>.optimizations_pending (1 when grey), collection.<c>.points,
collection.<c>.indexed_vectors, collection.<c>.segments, collection.<c>.vector_size (single
unnamed vector config only); cluster.enabled, cluster.peers and cluster.pending_operations
(distributed mode only); over https tls.cert_expiry_days and tls.cert_expired, read from the /healthz
connection (httpx's network_stream). A tls: block becomes both clients' httpx `verify` (an SSLContext
with its CA and client certificate). Details: collections (name, status, optimizer error, vectors config,
payload indexes), missing (names), unreported (collections left out by max_collections).

Default rules (`DEFAULT_RULES` below): a yellow or red collection, not ready, or a configured
collection missing -> degraded. Yellow also shows during normal re-indexing after large writes;
where that is routine, ``collection.*.status_code >= 2`` keeps only red.

Down: unreachable, timed out, an answer that is not Qdrant's, or the api key refused (401/403 on
an endpoint that needs it). Not ready (``/readyz`` 503) is *degraded*, not down: Qdrant is
answering and serves every shard that has loaded (a restarting node replaying its WAL, a peer
catching up); calling that an outage would page on every rolling restart. Raise it with the
target rule ``ready < 1 -> down`` where a not-ready node must count as an outage.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.kind import CapacityItem
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.tls_config import TlsTarget
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure, host_port
from hulk_ops.probes.lazy import lazy_module

if TYPE_CHECKING:
    import httpx
    from qdrant_client import AsyncQdrantClient
    from qdrant_client.http import models
else:
    httpx = lazy_module("httpx")


class _Qdrant:
    """qdrant-client, imported on first use: it takes about a second to import, which validating a config (every
    `hulk-ops report`, the dashboard) must not pay."""

    def __getattr__(self, name: str) -> Any:
        from qdrant_client import AsyncQdrantClient
        from qdrant_client.http import models
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        found = {"AsyncQdrantClient": AsyncQdrantClient, "models": models, "UnexpectedResponse": UnexpectedResponse,
                 "ResponseHandlingException": ResponseHandlingException}
        self.__dict__.update(found)
        return found[name]


_QDRANT = _Qdrant()


def _qdrant() -> _Qdrant:
    return _QDRANT

# grey ("optimizations possible but not triggered", usual after a restart until the next write) is not a
# fault: it maps to 0 and shows as collection.<c>.optimizations_pending instead.
STATUS_CODE = {"green": 0, "grey": 0, "yellow": 1, "red": 2}
PARALLEL_CALLS = 8  # concurrent GET /collections/{name} per probe


class Settings(TlsTarget):
    kind: Literal["qdrant"]
    tls_schemes = ("https://",)
    tls_unsupported = (("server_name", "qdrant-client has no option for it; put that name in the url"),)
    api_key: SecretStr | None = None
    collections: list[str] = Field(default_factory=list, description="collections to report (default: all)")
    max_collections: int = Field(100, ge=1, le=10_000, description="report at most this many collections")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be the REST API's http:// or https:// URL (e.g. http://host:6333), got {value!r}")
        return value.rstrip("/")


@dataclass(slots=True)
class QdrantClients:
    api: AsyncQdrantClient
    http: httpx.AsyncClient  # /healthz and /readyz answer plain text, which the client cannot parse


class QdrantProbe(Probe[Settings, QdrantClients]):
    kind = "qdrant"

    @property
    def transient(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (ConnectionResetError, BrokenPipeError, httpx.RemoteProtocolError)

    async def _connect(self) -> QdrantClients:
        # Building the clients loads CA certificates into new SSL contexts (httpx does it for http:// URLs
        # too): 30-150 ms of CPU on a busy host, paid again after every failure. A worker thread pays it,
        # so the event loop (and every other target's schedule) does not.
        return await asyncio.to_thread(self._build_clients)

    def _build_clients(self) -> QdrantClients:
        s = self.settings
        key = s.api_key.get_secret_value() if s.api_key else None
        tls_args: dict[str, Any] = {"verify": tls.client_context(s.tls)} if s.tls is not None else {}
        with warnings.catch_warnings():
            # "Api key is used with an insecure connection": the operator chose the URL; not news per cycle
            warnings.simplefilter("ignore", UserWarning)
            api = _qdrant().AsyncQdrantClient(url=s.url, api_key=key, timeout=math.ceil(s.timeout_s),
                                    check_compatibility=False, prefer_grpc=False, **tls_args)
        http = httpx.AsyncClient(base_url=s.url, timeout=s.timeout_s, headers={"api-key": key} if key else None,
                                 **tls_args)
        return QdrantClients(api, http)

    async def _close(self, client: QdrantClients) -> None:
        try:
            await client.api.close()
        finally:
            await client.http.aclose()

    async def _measure(self, client: QdrantClients) -> Measurement:
        started = time.perf_counter()
        health = await client.http.get("/healthz")
        latency_ms = (time.perf_counter() - started) * 1000
        if health.status_code != 200:
            raise ProbeFailure(f"/healthz answered HTTP {health.status_code}: {health.text[:200]}")
        stream = health.extensions.get("network_stream")
        der = tls.peer_der(stream.get_extra_info("ssl_object")) if stream is not None else None
        ready = await client.http.get("/readyz")
        version = (await client.api.info()).version
        names = [c.name for c in (await client.api.get_collections()).collections]
        wanted = self.settings.collections
        selected = [n for n in names if not wanted or n in wanted]
        reported = selected[: self.settings.max_collections]
        infos = await self._collection_infos(client.api, reported)
        metrics: dict[str, Any] = {"collections": len(names), **tls.cert_metrics(der)}
        notes: list[str] = []
        if ready.status_code in (200, 503):  # Qdrant before 1.5 has no /readyz (404): leave the metric out
            metrics["ready"] = ready.status_code == 200
        if ready.status_code == 503:
            notes.append(f"not ready: {ready.text.strip()[:120] or 'HTTP 503'}")
        details: dict[str, Any] = {"collections": [], "unreported": len(selected) - len(reported)}
        if wanted:
            missing = [n for n in wanted if n not in names]
            metrics["collections_missing"] = len(missing)
            details["missing"] = missing
        for name, info in infos.items():
            metrics.update(collection_metrics(name, info))
            detail = collection_details(name, info)
            details["collections"].append(detail)
            if detail["status"] in ("yellow", "red"):
                notes.append(f"collection {name} is {detail['status']}"
                             + (f": {detail['optimizer_error']}" if detail["optimizer_error"] else ""))
        metrics["points_total"] = sum(info.points_count or 0 for info in infos.values())
        metrics.update(await self._cluster_metrics(client.api))
        return Measurement(latency_ms=latency_ms, version=version, metrics=metrics, details=details,
                           note="; ".join(notes) or None)

    async def _cluster_metrics(self, api: AsyncQdrantClient) -> dict[str, Any]:
        try:
            return cluster_metrics(await api.http.distributed_api.cluster_status())
        except _qdrant().UnexpectedResponse as exc:
            if exc.status_code == 403:  # a JWT scoped to collections may not read /cluster: not a fault
                return {}
            raise

    async def _collection_infos(self, api: AsyncQdrantClient, names: list[str]) -> dict[str, models.CollectionInfo]:
        gate = asyncio.Semaphore(PARALLEL_CALLS)

        async def one(name: str) -> models.CollectionInfo | None:
            async with gate:
                try:
                    return await api.get_collection(name)
                except _qdrant().UnexpectedResponse as exc:
                    if exc.status_code == 404:  # deleted between the listing and this call
                        return None
                    raise

        found = await asyncio.gather(*(one(n) for n in names))
        return {name: info for name, info in zip(names, found, strict=True) if info is not None}

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc):
            return f"connection closed by peer ({host_port(self.settings.url)})"
        if isinstance(exc, _qdrant().UnexpectedResponse):
            body = _error_text(exc.content)
            if exc.status_code in (401, 403):
                return f"authentication failed: {body} (HTTP {exc.status_code}; check api_key)"
            return f"unexpected answer HTTP {exc.status_code}: {body}"
        if isinstance(exc, _qdrant().ResponseHandlingException) and not isinstance(exc.source, httpx.HTTPError):
            return f"not a Qdrant REST answer: {type(exc.source).__name__}: {str(exc.source)[:300]}"
        if isinstance(exc, httpx.TimeoutException) or (
            isinstance(exc, _qdrant().ResponseHandlingException) and isinstance(exc.source, httpx.TimeoutException)
        ):
            return f"timed out after {self.settings.timeout_s:.1f} s"
        return None


def collection_metrics(name: str, info: models.CollectionInfo) -> dict[str, Any]:
    prefix = f"collection.{name}"
    metrics: dict[str, Any] = {
        f"{prefix}.status_code": STATUS_CODE.get(str(info.status), 2),
        f"{prefix}.points": info.points_count,
        f"{prefix}.indexed_vectors": info.indexed_vectors_count,
        f"{prefix}.segments": info.segments_count,
        f"{prefix}.optimizations_pending": str(info.status) == "grey",
    }
    vectors = info.config.params.vectors
    if isinstance(vectors, _qdrant().models.VectorParams):
        metrics[f"{prefix}.vector_size"] = vectors.size
    return metrics


def collection_details(name: str, info: models.CollectionInfo) -> dict[str, Any]:
    vectors = info.config.params.vectors
    if isinstance(vectors, _qdrant().models.VectorParams):
        vector_config: Any = {"size": vectors.size, "distance": str(vectors.distance.value)}
    elif isinstance(vectors, dict):
        vector_config = {k: {"size": v.size, "distance": str(v.distance.value)} for k, v in vectors.items()}
    else:
        vector_config = None
    optimizer = info.optimizer_status
    return {
        "name": name,
        "status": str(info.status),
        "optimizer_error": optimizer.error if isinstance(optimizer, _qdrant().models.OptimizersStatusOneOf1) else None,
        "vectors": vector_config,
        "payload_indexes": sorted(info.payload_schema),
    }


def cluster_metrics(response: Any) -> dict[str, Any]:
    status = response.result
    if not isinstance(status, _qdrant().models.ClusterStatusOneOf1):
        return {"cluster.enabled": 0}
    return {
        "cluster.enabled": 1,
        "cluster.peers": len(status.peers),
        "cluster.pending_operations": status.raft_info.pending_operations,
    }


def _error_text(content: bytes) -> str:
    """Qdrant's errors are JSON ``{"status": {"error": ...}}`` or, from the auth layer, plain text."""
    text = content.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
        text = str(parsed["status"]["error"])
    except (ValueError, KeyError, TypeError):
        pass
    return text[:300] or "(empty body)"


# Metrics kept as history by the store (capacity trends).
TRACKED_METRICS = ("points_total", "collections", "collection.*.points", "collection.*.indexed_vectors")

def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    for name in sorted(m):
        parts = name.split(".")
        if parts[0] == "collection" and len(parts) == 3 and parts[2] == "points":
            yield CapacityItem(f"collection {parts[1]} points", m[name], None, "count", name)


CATALOG = Catalog([
    MetricSpec("ready", "1 when every shard is ready (/readyz)"),
    MetricSpec("collections", "Collections on the server"),
    MetricSpec("collections_missing", "Configured collections that do not exist"),
    MetricSpec("points_total", "Points over the reported collections", prom="points"),
    MetricSpec("collection.<collection>.status_code", "0 green or grey, 1 yellow (optimizing), 2 red"),
    MetricSpec("collection.<collection>.optimizations_pending", "1 when the collection is grey"),
    MetricSpec("collection.<collection>.points", "Points in the collection"),
    MetricSpec("collection.<collection>.indexed_vectors", "Indexed vectors in the collection"),
    MetricSpec("collection.<collection>.segments", "Segments of the collection"),
    MetricSpec("collection.<collection>.vector_size", "Dimension of the collection's single vector"),
    MetricSpec("cluster.enabled", "1 in distributed mode"),
    MetricSpec("cluster.peers", "Peers of the cluster"),
    MetricSpec("cluster.pending_operations", "Raft operations not yet applied"),
    *tls.METRICS,
])

DISPLAY_NAME = "Qdrant"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "collection.*.status_code >= 1",
    "ready < 1",
    "collections_missing > 0",
    "latency_ms > 1000",
    *tls.RULES,
)
def describe_breach(metric: str, value: float, result: ProbeResult) -> str | list[str] | None:
    """Rule messages naming the collection (its status from the details) or the missing collections; a message
    the probe's note already carries (``collection docs is red: ...``) is not repeated."""
    details = result.details or {}
    if metric == "collections_missing":
        return [f"collection {name} missing" for name in details.get("missing") or []] or None
    name = breach.between(metric, "collection.", ".status_code")
    if name is None:
        return None
    row: dict[str, Any] = next((c for c in details.get("collections") or [] if c.get("name") == name), {})
    state = row.get("status") or ("red" if value >= 2 else "yellow")
    error = f": {row['optimizer_error']}" if row.get("optimizer_error") else ""
    return f"collection {name} is {state}{error}"


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "qdrant", "url": "http://127.0.0.1:6333", "api_key": "k"}


def warm() -> None:
    """Import the client library now: the registry calls this before the first probe of the kind, so the import
    stays out of that probe's timeout (and out of validating a config)."""
    _qdrant().AsyncQdrantClient  # noqa: B018  (the attribute access imports)

PROBE = QdrantProbe
