"""Batching, buffering writer in front of the `ResultStore`.

Results queue in memory and are flushed in order, in batches, every `flush_interval_s` or as soon
as `batch_max` are waiting. When the store is unreachable the queue keeps growing up to
`buffer_max`; past that the oldest entries are dropped and counted. When the store is back, the
backlog is flushed in order. `stop()` lets the write under way finish, then flushes what is left
(bounded by a deadline).

Exactly once: every batch carries a sequence number that the store records in the same MULTI/EXEC
(`RedisResultStore.write(batch=...)`). A write whose outcome is unknown (the connection dropped after
EXEC was sent: Redis shutting down drops the replies it has not sent yet; a timeout; a cancellation)
is not simply sent again: the next attempt first asks the store whether that sequence number landed,
and if it did, removes the batch from the buffer without writing it twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence

import structlog
from opentelemetry.trace import SpanContext

from hulk_ops.collectors.grid import grid_after
from hulk_ops.collectors.store import STORE_ERRORS, ResultStore
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.model import ProbeResult, StateChange
from hulk_ops.observe import tracing

log = structlog.get_logger("hulk_ops.writer")

# (result, state change, the span of the cycle that produced it: the batched write links to it)
Entry = tuple[ProbeResult | None, StateChange | None, SpanContext | None]
MAX_LINKS = 64


class BufferedWriter:
    def __init__(
        self,
        store: ResultStore,
        metrics: CollectorMetrics,
        batch_max: int = 500,
        flush_interval_s: float = 0.2,
        buffer_max: int = 100_000,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.batch_max = batch_max
        self.flush_interval_s = flush_interval_s
        self.buffer: deque[Entry] = deque()
        self.buffer_max = buffer_max
        self.dropped = 0
        self.store_ok = True
        self.last_error: str | None = None
        self.write_times: deque[float] = deque(maxlen=256)  # seconds of the latest successful writes
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.writer_id = uuid.uuid4().hex[:16]  # names this writer's batch sequence in the store
        self._seq = 0
        # the batch written last whose outcome is unknown: (seq, entries at the buffer's head, of those dropped)
        self._unsure: tuple[int, int, int] | None = None
        metrics.store_buffered.set_function(lambda: len(self.buffer))  # read when scraped, not per result

    def submit(self, result: ProbeResult | None, change: StateChange | None = None) -> None:
        if len(self.buffer) >= self.buffer_max:
            self.buffer.popleft()
            if self._unsure is not None and self._unsure[1] > self._unsure[2]:
                seq, count, gone = self._unsure  # it may have landed: counted once we know
                self._unsure = (seq, count, gone + 1)
            else:
                self._count_dropped(1)
        self.buffer.append((result, change, tracing.current_link()))
        if len(self.buffer) >= self.batch_max:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    def _count_dropped(self, count: int) -> None:
        if count:
            self.dropped += count
            self.metrics.store_dropped.inc(count)

    async def stop(self, deadline_s: float = 1.0) -> None:
        """Stop the loop (its write under way may finish), then flush what is buffered within the deadline."""
        self._stopping = True
        self._wake.set()
        end = time.monotonic() + deadline_s
        if self._task:
            # the loop checks `_stopping`: it ends after the write under way, which is not cut in half
            await asyncio.wait({self._task}, timeout=deadline_s / 2)
            if not self._task.done():
                self._task.cancel()  # a write stuck on an unresponsive store: its outcome becomes unsure
                # bounded: a cancel swallowed inside the client (seen with uvloop) must not hang the shutdown
                await asyncio.wait({self._task}, timeout=max(0.05, end - time.monotonic()))
            if not self._task.done():
                self._failed(TimeoutError("the store write under way did not end in time"))
                log.warning("writer_loop_did_not_stop", results=len(self.buffer))
                return
        while self.buffer and time.monotonic() < end:
            try:
                async with asyncio.timeout(max(0.05, end - time.monotonic())):
                    if not await self.flush_once():
                        break
            except TimeoutError:
                break
        if self.buffer:
            if self.store_ok:  # the store did not answer within the deadline
                self._failed(TimeoutError(f"the store did not take the last {len(self.buffer)} results in time"))
            log.warning("writer_unflushed_at_stop", results=len(self.buffer))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.flush_interval_s
        while not self._stopping:
            try:
                # on the scheduler's grid (a flush shares the wake-up of the starts due then), `backoff` at most
                async with asyncio.timeout_at(grid_after(loop.time() + backoff - self.flush_interval_s,
                                                         self.flush_interval_s)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            while self.buffer:
                if not await self.flush_once():
                    backoff = min(max(backoff * 2, 0.5), 5.0)
                    break
                backoff = self.flush_interval_s
                if len(self.buffer) < self.batch_max:
                    break

    async def flush_once(self) -> bool:
        """Write the oldest batch; on success remove it from the buffer. Returns success."""
        if self._unsure is not None:
            landed = await self._settle_unsure()
            if landed is None:
                return False
            if landed:  # that batch is stored: it was this round's write
                return True
        count = min(len(self.buffer), self.batch_max)
        if not count:
            return True
        batch = [self.buffer[i] for i in range(count)]
        results = [r for r, _, _ in batch if r is not None]
        changes = [c for _, c, _ in batch if c is not None]
        links = [link for _, _, link in batch if link is not None][:MAX_LINKS]
        started = time.perf_counter()
        self._seq += 1
        self._unsure = (self._seq, count, 0)  # until the store answers (a cancellation leaves it unsure)
        with tracing.span("store.write", links=links, results=len(results), changes=len(changes)) as span:
            try:
                await self.store.write(results, changes, batch=(self.writer_id, self._seq))
            except STORE_ERRORS as exc:
                tracing.fail(span, f"{type(exc).__name__}: {exc}")
                self._failed(exc)
                return False
        took = time.perf_counter() - started
        self.metrics.store_write.observe(took)
        self.write_times.append(took)
        self._unsure = None
        self._landed(count)
        return True

    async def _settle_unsure(self) -> bool | None:
        """Did the last batch with an unknown outcome land? If so it leaves the buffer (it is stored, and
        entries of it dropped meanwhile were not lost); if not, its dropped entries are counted now.
        None: the store cannot be asked yet."""
        assert self._unsure is not None
        seq, count, gone = self._unsure
        try:
            landed = await self.store.batch_landed(self.writer_id, seq)
        except STORE_ERRORS as exc:
            self._failed(exc)
            return None
        self._unsure = None
        if landed:
            log.info("store_batch_had_landed", results=count, seq=seq)
            self._landed(count - gone)
            return True
        self._count_dropped(gone)
        return False

    def _landed(self, count: int) -> None:
        for _ in range(count):
            self.buffer.popleft()
        if not self.store_ok:
            log.info("store_recovered", flushed=count, backlog=len(self.buffer), dropped=self.dropped)
        self.store_ok = True
        self.metrics.store_up.set(1)

    def _failed(self, exc: BaseException) -> None:
        if self.store_ok:
            log.warning("store_unreachable", error=str(exc), buffered=len(self.buffer))
        self.store_ok = False
        self.last_error = str(exc)
        self.metrics.store_up.set(0)

    def pending(self) -> Sequence[Entry]:
        return list(self.buffer)

    def oldest_buffered_at(self) -> float | None:
        """When the oldest result still waiting to be stored was observed (the buffer is in probe order)."""
        for result, _change, _link in self.buffer:
            if result is not None:
                return result.observed_ts
        return None

