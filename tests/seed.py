"""Seed a store through the real write path (RedisResultStore), for page tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from hulk_ops.core.config import Config
from hulk_ops.core.model import ProbeResult, StateChange, iso
from hulk_ops.entrypoints.bootstrap import build_store


def result(target: str, kind: str, status: str, ts: float, latency_ms: float | None = 1.5,
           version: str | None = "1.0", error: str | None = None, metrics: dict | None = None,
           details: dict | None = None) -> ProbeResult:
    return ProbeResult(target, kind, status, latency_ms, version, dict(metrics or {}), error,  # type: ignore[arg-type]
                       iso(datetime.fromtimestamp(ts, UTC)), dict(details or {}))


def seed(config: Config, results: Iterable[ProbeResult], changes: Iterable[StateChange] = (),
         batch: int = 5000) -> None:
    """Write results (in the given order) and state changes through the collector's store adapter."""

    async def go() -> None:
        store = build_store(config)
        try:
            pending = list(results)
            for start in range(0, len(pending), batch):
                await store.write(pending[start:start + batch], [])
            if changes:
                await store.write([], list(changes))
        finally:
            await store.close()

    asyncio.run(go())
