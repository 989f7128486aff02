"""Polling helpers for tests: wait for a condition with a deadline, never a long fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; return its value (or the last falsy one at the deadline)."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = condition()
    return value


async def await_for(condition: Callable[[], Any], within: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    value = condition()
    while not value and time.monotonic() < deadline:
        await asyncio.sleep(step)
        value = condition()
    return value
