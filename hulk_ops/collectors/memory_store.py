"""In-memory `ResultStore`: the fake used by unit tests (same port as the Redis adapter)."""

from __future__ import annotations

from collections.abc import Sequence

from hulk_ops.core.model import JSON, ProbeResult, StateChange


class MemoryResultStore:
    def __init__(self) -> None:
        self.latest: dict[str, ProbeResult] = {}
        self.history: dict[str, list[ProbeResult]] = {}
        self.events: list[StateChange] = []
        self.heartbeats: dict[str, dict[str, JSON]] = {}
        self.breakers: dict[str, dict[str, JSON]] = {}
        self.series: list[tuple[str, float, float]] = []
        self.writes = 0
        self.fail_writes = False  # flip to simulate an outage
        self.lose_replies = 0  # this many next writes land, then fail as if the reply was lost
        self.marks: dict[str, int] = {}

    async def write(self, results: Sequence[ProbeResult], changes: Sequence[StateChange],
                    batch: tuple[str, int] | None = None) -> None:
        if self.fail_writes:
            raise ConnectionError("memory store is failing on purpose")
        self.writes += 1
        for result in results:
            self.latest[result.target] = result
            self.history.setdefault(result.target, []).append(result)
        self.events.extend(changes)
        if batch is not None:
            self.marks[batch[0]] = batch[1]
        if self.lose_replies:
            self.lose_replies -= 1
            raise ConnectionError("memory store landed the write, then lost the reply on purpose")

    async def batch_landed(self, writer: str, seq: int) -> bool:
        if self.fail_writes:
            raise ConnectionError("memory store is failing on purpose")
        return self.marks.get(writer, -1) >= seq

    async def write_series(self, points: Sequence[tuple[str, float, float]]) -> None:
        self.series.extend(points)

    async def previous_statuses(self) -> dict[str, str]:
        return {name: r.status for name, r in self.latest.items()}

    async def write_heartbeat(self, replica: str, info: dict[str, JSON]) -> None:
        self.heartbeats[replica] = info

    async def write_breakers(self, states: dict[str, dict[str, JSON]]) -> None:
        self.breakers.update(states)

    async def close(self) -> None:
        return None
