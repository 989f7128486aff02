"""The buffering writer: batches, survives a store outage in order, drops oldest past its bound."""

from __future__ import annotations

import asyncio

from hulk_ops.collectors.memory_store import MemoryResultStore
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.model import ProbeResult


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


async def test_a_batch_whose_reply_was_lost_is_not_written_twice() -> None:
    """The store applied the batch but the reply never came (Redis shutting down drops unsent replies)."""
    store = MemoryResultStore()
    metrics = CollectorMetrics()
    writer = BufferedWriter(store, metrics, batch_max=4, buffer_max=1000)
    for i in range(6):
        writer.submit(result(i))
    store.lose_replies = 1
    assert not await writer.flush_once()  # landed, but the writer could not know
    assert len(writer.buffer) == 6 and not writer.store_ok
    while writer.buffer:
        assert await writer.flush_once()
    stored = sorted(r.metrics["i"] for h in store.history.values() for r in h)
    assert stored == [float(i) for i in range(6)]  # each once
    assert writer.store_ok and writer.dropped == 0


async def test_entries_of_an_unsure_batch_dropped_at_the_bound_count_only_if_lost() -> None:
    store = MemoryResultStore()
    writer = BufferedWriter(store, CollectorMetrics(), batch_max=100, buffer_max=100)
    for i in range(3):
        writer.submit(result(i))
    store.lose_replies = 1
    assert not await writer.flush_once()  # 0..2 landed; nobody knows yet
    for i in range(3, 103):  # the bound pushes 0..2 out of the buffer
        writer.submit(result(i))
    assert writer.dropped == 0  # not yet: they may be stored
    assert await writer.flush_once()  # asks: they had landed, so nothing was lost
    while writer.buffer:
        assert await writer.flush_once()
    assert writer.dropped == 0
    assert sorted(r.metrics["i"] for h in store.history.values() for r in h) == [float(i) for i in range(103)]

    lost = MemoryResultStore()
    writer = BufferedWriter(lost, CollectorMetrics(), batch_max=100, buffer_max=100)
    for i in range(3):
        writer.submit(result(i))
    lost.fail_writes = True
    assert not await writer.flush_once()  # refused: never landed
    for i in range(3, 103):
        writer.submit(result(i))
    lost.fail_writes = False
    while writer.buffer:
        assert await writer.flush_once()
    assert writer.dropped == 3  # known lost once the store said so
    assert sorted(r.metrics["i"] for h in lost.history.values() for r in h) == [float(i) for i in range(3, 103)]


async def test_stop_lets_the_write_under_way_finish() -> None:
    store = MemoryResultStore()
    release = asyncio.Event()
    original = store.write

    async def slow_write(results, changes, batch=None):
        await release.wait()
        await original(results, changes, batch)

    store.write = slow_write
    writer = BufferedWriter(store, CollectorMetrics(), flush_interval_s=0.01)
    writer.start()
    writer.submit(result(0))
    await asyncio.sleep(0.05)  # the loop is inside its write
    asyncio.get_running_loop().call_later(0.1, release.set)
    await writer.stop(deadline_s=1.0)
    assert [r.metrics["i"] for r in store.history["t0"]] == [0.0]
    assert not writer.buffer and store.writes == 1
