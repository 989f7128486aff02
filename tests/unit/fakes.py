"""Fakes of our own ports (never of a client library): a scripted probe kind."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from hulk_ops.core.config import TargetSettings
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure


class FakeSettings(TargetSettings):
    kind: Literal["redis"] = "redis"


class ScriptedProbe(Probe[FakeSettings, object]):
    """Each check sleeps `delay_s` then succeeds, or fails when `failing` is set."""

    kind = "redis"

    def __init__(self, settings: FakeSettings, delay_s: float = 0.0, **kw: Any) -> None:
        super().__init__(settings, **kw)
        self.delay_s = delay_s
        self.failing: str | None = None
        self.calls = 0
        self.raise_type: type[BaseException] | None = None

    async def _connect(self) -> object:
        return object()

    async def _measure(self, client: object) -> Measurement:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.raise_type is not None:
            raise self.raise_type("scripted")
        if self.failing:
            raise ProbeFailure(self.failing)
        return Measurement(latency_ms=1.0, version="1.0", metrics={"n": self.calls})


def settings(name: str, interval_s: float = 0.2, timeout_s: float = 0.1, **kw: Any) -> FakeSettings:
    return FakeSettings(name=name, url="fake://x", interval_s=interval_s, timeout_s=timeout_s, **kw)
