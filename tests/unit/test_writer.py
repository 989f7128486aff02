"""The buffering writer: batches, survives a store outage in order, drops oldest past its bound."""

from __future__ import annotations

import asyncio

from collectors.memory_store import MemoryResultStore
from collectors.telemetry import CollectorMetrics
from collectors.writer import BufferedWriter
from hulk_ops.model import ProbeResult


def result(i: int) -> ProbeResult:
    return ProbeResult(f"t{i % 3}", "redis", "up", 1.0, None, {"i": float(i)}, None, "2026-01-01T00:00:00.000Z")


async def test_outage_buffers_then_flushes_in_order() -> None:
    store = MemoryResultStore()
    metrics = CollectorMetrics()
    writer = BufferedWriter(store, metrics, batch_max=7, flush_interval_s=0.02, buffer_max=1000)
    writer.start()
    store.fail_writes = True
    for i in range(50):
        writer.submit(result(i))
    await asyncio.sleep(0.2)
    assert not writer.store_ok
    assert metrics.registry.get_sample_value("hulk_ops_store_up") == 0
    assert len(writer.buffer) == 50
    store.fail_writes = False
    for _ in range(100):
        if not writer.buffer:
            break
        await asyncio.sleep(0.05)
    await writer.stop()
    flushed = [r.metrics["i"] for name in ("t0", "t1", "t2") for r in store.history[name]]
    assert sorted(flushed) == [float(i) for i in range(50)]
    for name in ("t0", "t1", "t2"):
        seq = [r.metrics["i"] for r in store.history[name]]
        assert seq == sorted(seq)  # in order per target
    assert writer.store_ok and writer.dropped == 0


async def test_bound_drops_oldest_and_counts() -> None:
    store = MemoryResultStore()
    store.fail_writes = True
    metrics = CollectorMetrics()
    writer = BufferedWriter(store, metrics, batch_max=10, buffer_max=100)
    for i in range(130):
        writer.submit(result(i))
    assert len(writer.buffer) == 100
    assert writer.dropped == 30
    assert metrics.registry.get_sample_value("hulk_ops_store_dropped_results_total") == 30
    assert writer.buffer[0][0].metrics["i"] == 30  # the oldest went first
    store.fail_writes = False
    await writer.stop(deadline_s=1.0)
    assert len(store.history["t0"]) + len(store.history["t1"]) + len(store.history["t2"]) == 100
