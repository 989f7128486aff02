"""Writes the long-range tier (`hulk_ops/collectors/rollups.py`) as hours and days close.

Every collector runs one `RollupJob`; with sharding each summarises the targets it owns. Every
`EVERY_S` it looks at the hours of the raw retention that are *closed*: over for `SETTLE_S`, and no
live collector still holds an unstored result observed before their end (each heartbeat says when the
oldest result its writer buffers was observed: a collector flushing a store outage holds the hours back
until its backlog has landed). For each closed target-hour without a summary it reads the raw chunk and
the tracked metric chunks, and appends the summary through the store's Lua script, which writes a slot
at most once. A day is summarised from its hour summaries once every hour of it is closed, and the
day's hourly value is then compacted.

What was done is remembered in memory, so hours missed while the store was down are summarised from the raw
chunks once it is back. At start, the masks in the store say what is missing over the last `RESCAN_H` hours
(an hour that closed just before a restart). The work goes in rounds of `BATCH` targets with a pause between
them: the collector's probes share the event loop (at 10,000 targets, one pass at once delayed probe starts
by seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import structlog

from hulk_ops.collectors import rollups
from hulk_ops.collectors.codec import HOUR, Keys, decode_points, decode_samples, hour_of
from hulk_ops.collectors.redis_client import mget_any, run_scripts
from hulk_ops.core.config import RollupSettings

log = structlog.get_logger("hulk_ops.rollups")
EVERY_S = 60.0
SETTLE_S = 60.0
BATCH = 64  # targets per round of reads and writes
PAUSE_S = 0.01  # between rounds: the collector's probes share this event loop, and starts must stay on time
RESCAN_H = 6  # at start, closed hours this far back are checked for a missing summary
HEARTBEAT_LIVE_S = 30.0
DAY = rollups.DAY


@dataclass
class RollupStats:
    hours_written: int = 0
    hours_skipped: int = 0  # another writer had it already
    days_written: int = 0
    compacted: int = 0
    last_run_s: float | None = None
    last_error: str | None = None


@dataclass
class RollupJob:
    redis: Any  # redis.asyncio client of the store
    keys: Keys
    settings: RollupSettings
    retention_h: float
    targets: Callable[[], Sequence[str]]  # the targets this collector summarises
    min_expire_at: int = 0  # summaries live at least until then (a history import summarising old hours)
    rescan_h: int = RESCAN_H
    stats: RollupStats = field(default_factory=RollupStats)
    _hours_done: set[tuple[str, int]] = field(default_factory=set)
    _days_done: set[tuple[str, int]] = field(default_factory=set)
    _name_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    _scripts: dict[str, Any] = field(default_factory=dict)
    _scan_from: int | None = None  # the oldest hour looked at: RESCAN_H before the first run

    def __post_init__(self) -> None:
        self._scripts = {
            "append": self.redis.register_script(rollups.APPEND_LUA),
            "compact": self.redis.register_script(rollups.COMPACT_LUA),
            "name": self.redis.register_script(rollups.NAME_ID_LUA),
        }

    async def run(self, stop: asyncio.Event, every_s: float = EVERY_S) -> None:
        while not stop.is_set():
            try:
                await self.once()
                self.stats.last_error = None
            except Exception as exc:  # the store may be down: the next run rebuilds what this one missed
                self.stats.last_error = str(exc)
                log.warning("rollup_failed", error=str(exc))
            try:
                async with asyncio.timeout(every_s):
                    await stop.wait()
            except TimeoutError:
                pass

    async def once(self, now: float | None = None) -> RollupStats:
        started = time.perf_counter()
        now = time.time() if now is None else now
        fence = min(now - SETTLE_S, await self._fence(now))
        names = list(self.targets())
        first = hour_of(now - self.retention_h * HOUR) + 1  # older raw chunks may be partly expired
        first = max(first, (int(now // DAY) - self.settings.hourly_days + 1) * 24)  # older hours would expire at once
        hours = [h for h in range(first, hour_of(now)) if (h + 1) * HOUR <= fence]
        if self._scan_from is None:
            self._scan_from = hour_of(now) - self.rescan_h
        hours = [h for h in hours if h >= self._scan_from]
        for i in range(0, len(names), BATCH):
            await self._hours(names[i:i + BATCH], hours)
            await asyncio.sleep(PAUSE_S)
        last_day = int(fence // DAY) - 1  # days that ended before the fence
        first_day = max(hour_of(now - self.settings.hourly_days * DAY) // 24 + 1, self._scan_from // 24 - 1)
        days = list(range(first_day, last_day + 1))
        for i in range(0, len(names), BATCH):
            await self._days(names[i:i + BATCH], days)
            await asyncio.sleep(PAUSE_S)
        if days:
            month, _slot = rollups.month_of_day(days[-1])
            last_closed = month if rollups.month_end_day(month) == days[-1] + 1 else month - 1
            for i in range(0, len(names), BATCH):
                await self._compact_month(names[i:i + BATCH], last_closed)
        self._forget(first)
        self.stats.last_run_s = round(time.perf_counter() - started, 3)
        return self.stats

    async def _fence(self, now: float) -> float:
        """The end before which every live collector's results are stored."""
        fence = now
        for blob in (await self.redis.hgetall(self.keys.collectors)).values():
            try:
                info = orjson.loads(blob)
            except orjson.JSONDecodeError:
                continue
            live = now - float(info.get("heartbeat_at") or 0) <= HEARTBEAT_LIVE_S and not info.get("stopped")
            oldest = info.get("oldest_buffered_at")
            if live and oldest is not None:
                fence = min(fence, float(oldest))
        return fence

    async def _hours(self, names: Sequence[str], hours: Sequence[int]) -> None:
        todo = [(n, h) for n in names for h in hours if (n, h) not in self._hours_done]
        if not todo:
            return
        day_keys = sorted({(n, h // 24) for n, h in todo})
        pipe = self.redis.pipeline(transaction=False)
        for n, day in day_keys:
            pipe.getrange(self.keys.rollup_hourly(n, day), 0, 3)
        masks = {k: rollups.mask_of(v) for k, v in zip(day_keys, await pipe.execute(), strict=True)}
        missing = []
        for n, h in todo:
            if masks[(n, h // 24)] >> (h % 24) & 1:
                self._hours_done.add((n, h))
            else:
                missing.append((n, h))
        if not missing:
            return
        found = await mget_any(self.redis, [self.keys.history(n, h) for n, h in missing])
        chunks = {}
        for (n, h), chunk in zip(missing, found, strict=True):
            if chunk:
                chunks[(n, h)] = chunk
            else:  # nothing probed that hour (not yet a target, or its chunk expired)
                self._hours_done.add((n, h))
        if not chunks:
            return
        targets = sorted({n for n, _ in chunks})
        pipe = self.redis.pipeline(transaction=False)
        for n in targets:
            pipe.smembers(self.keys.metric_index(n))
        tracked = {n: sorted(m.decode() for m in members)
                   for n, members in zip(targets, await pipe.execute(), strict=True)}
        await self._name_ids_for(tracked)
        wanted = [(n, h, name) for n, h in chunks for name in tracked[n]]
        points = dict(zip(wanted, await mget_any(self.redis, [self.keys.metric(n, name, h) for n, h, name in wanted]),
                          strict=True))
        calls, written = [], []
        for (n, h), chunk in chunks.items():
            samples = decode_samples([(h, chunk)], h * HOUR, (h + 1) * HOUR)
            metrics = {}
            for name in tracked[n]:
                blob = points.get((n, h, name))
                if blob:
                    metrics[self._name_ids[(n, name)]] = decode_points([(h, blob)], h * HOUR, (h + 1) * HOUR)["value"]
            summary = rollups.summarise(h % 24, samples["status"], samples["latency"].astype(np.float64),
                                        {k: v.astype(np.float64) for k, v in metrics.items()})
            expire_at = max((h // 24 + 1 + self.settings.hourly_days) * DAY, self.min_expire_at)
            calls.append((self._scripts["append"], [self.keys.rollup_hourly(n, h // 24)],
                          [h % 24, rollups.encode(summary), expire_at]))
            written.append((n, h))
        if written:
            for (n, h), ok in zip(written, await run_scripts(self.redis, calls), strict=True):
                self._hours_done.add((n, h))
                if ok:
                    self.stats.hours_written += 1
                else:
                    self.stats.hours_skipped += 1

    async def _name_ids_for(self, tracked: dict[str, list[str]]) -> None:
        new = [(n, name) for n, names in tracked.items() for name in names if (n, name) not in self._name_ids]
        if not new:
            return
        ttl = (self.settings.daily_days + 62) * DAY
        calls = [(self._scripts["name"], [self.keys.rollup_names(n)], [name, ttl]) for n, name in new]
        for key, pos in zip(new, await run_scripts(self.redis, calls), strict=True):
            self._name_ids[key] = int(pos)

    async def _days(self, names: Sequence[str], days: Sequence[int]) -> None:
        todo = [(n, d) for n in names for d in days if (n, d) not in self._days_done]
        if not todo:
            return
        pipe = self.redis.pipeline(transaction=False)
        for n, d in todo:
            month, _slot = rollups.month_of_day(d)
            pipe.getrange(self.keys.rollup_daily(n, month), 0, 3)
            pipe.get(self.keys.rollup_hourly(n, d))
        replies = await pipe.execute()
        calls: list[tuple[Any, list[str], list[Any]]] = []
        queued: list[str] = []  # "day" or "compact", in call order
        for i, (n, d) in enumerate(todo):
            mask, hourly = rollups.mask_of(replies[2 * i]), replies[2 * i + 1]
            month, slot = rollups.month_of_day(d)
            if not hourly:
                self._days_done.add((n, d))
                continue
            if not mask >> slot & 1:
                day = rollups.merge(slot, rollups.decode(hourly))
                expire_at = max((rollups.month_end_day(month) + self.settings.daily_days) * DAY, self.min_expire_at)
                calls.append((self._scripts["append"], [self.keys.rollup_daily(n, month)],
                              [slot, rollups.encode(day), expire_at]))
                queued.append("day")
            packed = rollups.compacted(hourly)
            if packed is not None:
                calls.append((self._scripts["compact"], [self.keys.rollup_hourly(n, d)], [hourly, packed]))
                queued.append("compact")
        if queued:
            for what, ok in zip(queued, await run_scripts(self.redis, calls), strict=True):
                if what == "day":
                    self.stats.days_written += int(bool(ok))
                else:
                    self.stats.compacted += int(bool(ok))
        self._days_done.update(todo)

    async def _compact_month(self, names: Sequence[str], month: int) -> None:
        """Compact the day summaries of a month that is over (once per target and month)."""
        todo = [n for n in names if (n, -month) not in self._days_done]
        if not todo:
            return
        values = await mget_any(self.redis, [self.keys.rollup_daily(n, month) for n in todo])
        calls = []
        for n, value in zip(todo, values, strict=True):
            packed = rollups.compacted(value) if value else None
            if packed is not None:
                calls.append((self._scripts["compact"], [self.keys.rollup_daily(n, month)], [value, packed]))
        if calls:
            self.stats.compacted += sum(1 for ok in await run_scripts(self.redis, calls) if ok)
        self._days_done.update((n, -month) for n in todo)

    def _forget(self, first_hour: int) -> None:
        """Drop what is older than the raw retention (never asked again)."""
        self._hours_done = {k for k in self._hours_done if k[1] >= first_hour}
        first_day = first_hour // 24 - self.settings.hourly_days
        self._days_done = {k for k in self._days_done if k[1] >= first_day or k[1] < 0}
