"""Per-target circuit breaker, on purgatory's state machine.

The breaker counts consecutive down results (probes never raise, so a down result is turned into
purgatory's failure signal here). While open, the target is not probed and reported down with
the breaker's reason; after `reset_s` one trial probe runs (half-open) and closes or re-opens it.
Every transition is logged (``breaker_state``) and kept in `transitions` (the newest 32); the
scheduler publishes a changed state to the store at once (`hulk_ops/entrypoints/service.py`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from purgatory.domain.messages.events import ContextChanged
from purgatory.domain.model import Context, OpenedState

from hulk_ops.core.model import JSON

log = structlog.get_logger("hulk_ops.breaker")


class _Down(Exception):
    pass


@dataclass(slots=True)
class BreakerView:
    state: str  # "closed" | "opened" | "half-opened"
    failures: int
    opened_at: float | None
    retry_at: float | None

    def to_dict(self) -> dict[str, JSON]:
        return {"state": self.state, "failures": self.failures, "opened_at": self.opened_at,
                "retry_at": self.retry_at}


class TargetBreaker:
    __slots__ = ("_ctx", "_transitions", "consecutive_failures", "last_error", "reset_s")

    def __init__(self, name: str, failures: int, reset_s: float) -> None:
        self._ctx = Context(name, threshold=failures, ttl=reset_s)
        self.reset_s = reset_s
        self.last_error: str | None = None
        self.consecutive_failures = 0  # purgatory forgets the count once open; operators want it
        # made on the first transition: most breakers never leave "closed", and a deque is ~0.7 KB
        self._transitions: deque[tuple[float, str]] | None = None

    @property
    def transitions(self) -> Sequence[tuple[float, str]]:
        """The newest 32 transitions, oldest first: (wall clock, new state)."""
        return self._transitions if self._transitions is not None else ()

    @property
    def state(self) -> str:
        return self._ctx.state

    def allow(self) -> bool:
        """True when a probe may run now (closed, or the open period is over: half-open trial)."""
        if self.consecutive_failures == 0 and self._ctx.state == "closed":
            return True  # purgatory's closed state takes no note of a request (the common case, every probe)
        try:
            self._ctx.handle_new_request()
        except OpenedState as exc:
            # purgatory raises its (long-lived) open state object itself: every `raise` prepends the frames
            # of this call to that instance's traceback, so each rejected probe kept its frames alive until
            # the breaker left the open state (and then as cyclic garbage: state -> traceback -> frame -> state)
            exc.__traceback__ = None
            return False
        finally:
            self._harvest()
        return True

    def record(self, down: bool, error: str | None = None) -> None:
        if not down and self.consecutive_failures == 0 and self._ctx.state == "closed":
            return  # nothing to reset: purgatory's closed state has counted no failure either
        self.consecutive_failures = self.consecutive_failures + 1 if down else 0
        if down:
            self.last_error = error
            self._ctx.handle_exception(_Down(error or "down"))
        else:
            self._ctx.handle_end_request()
        self._harvest()

    def _harvest(self) -> None:
        """Turn purgatory's domain events into our transition log (and forget them: they pile up otherwise)."""
        for message in self._ctx.messages:
            if isinstance(message, ContextChanged):
                if self._transitions is None:
                    self._transitions = deque(maxlen=32)
                self._transitions.append((time.time(), message.state))
                log.info("breaker_state", target=self._ctx.name, state=message.state,
                         failures=self.consecutive_failures,
                         error=self.last_error if message.state == "opened" else None)
        self._ctx.messages.clear()

    def signature(self) -> tuple[str, int]:
        """Changes whenever `view()` would show something new (cheap: no view built)."""
        return self._ctx.state, self.consecutive_failures

    @property
    def is_open(self) -> bool:
        return self._ctx.state != "closed"

    def view(self) -> BreakerView:
        opened_at = self._ctx.opened_at if self._ctx.state == "opened" else None
        return BreakerView(
            state=self._ctx.state,
            failures=self.consecutive_failures,
            opened_at=opened_at,
            retry_at=(opened_at + self.reset_s) if opened_at else None,
        )

    def reason(self) -> str:
        view = self.view()
        wait = max(0.0, (view.retry_at or time.time()) - time.time())
        last = f"; last error: {self.last_error}" if self.last_error else ""
        return f"circuit breaker open, next trial in {wait:.0f} s{last}"
