"""Structured JSON logs (structlog) on stderr; secrets are masked before anything is written.

A line logged inside a span carries `trace_id` and `span_id` (hex, as trace backends show them).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO, cast

import structlog

from hulk_ops.observe import tracing

_SECRETS: list[str] = []


def _mask(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not _SECRETS:
        return event
    for key, value in event.items():
        if isinstance(value, str):
            for secret in _SECRETS:
                if secret in value:
                    value = value.replace(secret, "***")
            event[key] = value
    return event


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    found = tracing.ids()
    if found is not None:
        event.setdefault("trace_id", found[0])
        event.setdefault("span_id", found[1])
    return event


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing, not at configure time (a test's captured
    stream is closed after it; a handler bound to it would fail every later log line)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_secrets(secrets: Iterable[str]) -> None:
    """Also mask these (a reloaded config's secrets; the previous ones stay masked)."""
    _SECRETS[:] = sorted({*_SECRETS, *(s for s in secrets if s and len(s) >= 3)}, key=len, reverse=True)


def configure(level: str = "INFO", secrets: Iterable[str] = (), json: bool = True) -> None:
    _SECRETS[:] = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)
    logging.basicConfig(stream=_CurrentStderr(), level=level, format="%(message)s", force=True)
    for noisy in ("asyncio", "nats", "neo4j", "kubernetes", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_trace_ids,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),  # write() and flush() only
        cache_logger_on_first_use=False,
    )
