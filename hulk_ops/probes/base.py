"""The probe contract every read adapter implements.

A probe measures one target with its backend's official client and returns a `ProbeResult`.
It never raises: a failure is a result with status "down" and an error a person can act on.
Subclasses implement `_measure()` (one attempt, using `self.client()`), `_connect()` and
optionally `_close()`, `describe()` and the `transient` exception types worth a retry.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from hulk_ops.core.config import TargetSettings
from hulk_ops.core.model import ProbeResult, Status, clean_metrics, iso, utcnow
from hulk_ops.core.rules import RuleSet
from hulk_ops.probes import tls

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

S = TypeVar("S", bound=TargetSettings)
C = TypeVar("C")


def _log() -> FilteringBoundLogger:
    """The probes' logger, looked up when first needed: validating a config imports this module, not structlog."""
    import structlog

    return structlog.get_logger("hulk_ops.probe")


class ProbeFailure(Exception):
    """Raised inside `_measure()` for a condition that makes the target down (e.g. JetStream off)."""


@dataclass(slots=True)
class Measurement:
    latency_ms: float | None = None
    version: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # None (or NaN): not measured, dropped
    details: Mapping[str, object] = field(default_factory=dict)  # structured extras, stored as JSON (orjson)
    status: Status = "up"
    note: str | None = None


V = TypeVar("V")


class Occasional(Generic[V]):
    """A reading too heavy for every cycle (a database's size): read again once `every_s` has passed, reported as
    last read in between, forgotten with the connection it was read on."""

    __slots__ = ("_at", "value")

    def __init__(self) -> None:
        self._at: float | None = None
        self.value: V | None = None

    def due(self, every_s: float) -> bool:
        return self._at is None or time.monotonic() - self._at >= every_s

    def keep(self, value: V) -> V:
        self._at, self.value = time.monotonic(), value
        return value

    def forget(self) -> None:
        self._at = None


class Probe(ABC, Generic[S, C]):
    kind: ClassVar[str]
    # Exception types worth another attempt inside the timeout budget (the client is rebuilt first).
    transient: ClassVar[tuple[type[BaseException], ...]] = (ConnectionResetError, BrokenPipeError)

    def __init__(self, settings: S, rules: RuleSet | None = None, retries: int = 0) -> None:
        self.settings = settings
        self.rules = rules or RuleSet([])
        self.retries = retries
        self.last_attempts = 0
        self._client: C | None = None
        self._secrets = tuple(s for s in settings.secrets() if s)
        self._closing: set[asyncio.Task[None]] | None = None  # closes of discarded clients (made on the first)

    @property
    def name(self) -> str:
        return self.settings.name

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    async def _connect(self) -> C:
        """Build the client (one per target, reused across cycles)."""

    @abstractmethod
    async def _measure(self, client: C) -> Measurement:
        """One attempt. Raise the client's exceptions or ProbeFailure; never catch-all."""

    async def _close(self, client: C) -> None:
        """Release the client."""

    def describe(self, exc: BaseException) -> str | None:
        """A person-readable message for this client's exception family (None: use the generic one)."""
        return None

    def describe_tls(self, exc: BaseException) -> str | None:
        """A TLS failure anywhere in the exception's chain, on one line naming the server (and ca_file)."""
        options = getattr(self.settings, "tls_options", None)
        if options is None:  # a kind without a tls: block describes its TLS errors itself
            return None
        return tls.describe(_chain(exc), host_port(self.settings.url), options())

    # -- the contract -------------------------------------------------------------------------
    async def check(self) -> ProbeResult:
        observed = utcnow()
        started = time.perf_counter()
        self.last_attempts = 0
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                measurement = await self._attempts()
        except TimeoutError:
            self._discard_client()
            return self._down(observed, started, f"timed out after {timeout:.1f} s")
        except ProbeFailure as exc:
            return self._down(observed, started, str(exc))
        except Exception as exc:  # failure is data: every error becomes a down result
            self._discard_client()
            described = self.describe_tls(exc) or self.describe(exc)
            message = described or describe_error(exc, self.settings.url, timeout)
            options = getattr(self.settings, "tls_options", None)
            if options is not None:
                message = tls.with_client_cert_hint(message, options())
            if described is None and not _is_expected(exc):  # neither the client's family nor the network
                _log().warning("probe_unexpected_error", target=self.name, kind=self.kind,
                               error_type=type(exc).__name__, error=self._redact(str(exc)))
            return self._down(observed, started, message)
        elapsed_ms = (time.perf_counter() - started) * 1000
        result = ProbeResult(
            target=self.name,
            kind=self.kind,
            status=measurement.status,
            latency_ms=round(measurement.latency_ms if measurement.latency_ms is not None else elapsed_ms, 3),
            version=measurement.version,
            metrics=clean_metrics(measurement.metrics),
            error=self._redact(measurement.note) if measurement.note else None,
            observed_at=iso(observed),
            details=dict(measurement.details),
        )
        return self.rules.evaluate(result)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._safe_close(client)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=1.0)

    # -- internals ----------------------------------------------------------------------------
    async def _attempts(self) -> Measurement:
        # The first attempt runs outside tenacity: it is the common case (it succeeds, or fails for good), and
        # tenacity's per-call machinery was ~5 % of a probe's CPU. Only a transient error enters the retry loop.
        self.last_attempts = 1
        try:
            if self._client is None:
                self._client = await self._connect()
            return await self._measure(self._client)
        except Exception as exc:
            if self.retries == 0 or not (isinstance(exc, self.transient) or closed_transport(exc)):
                raise
            self._discard_client()
        await asyncio.sleep(_wait_after(1))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries),
            wait=lambda state: _wait_after(state.attempt_number + 1),  # numbered as if tenacity ran attempt 1
            retry=retry_if_exception_type(self.transient) | retry_if_exception(closed_transport),
            before_sleep=lambda _state: self._discard_client(),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self.last_attempts += 1
                if self._client is None:
                    self._client = await self._connect()
                return await self._measure(self._client)
        raise AssertionError("unreachable")  # pragma: no cover

    def _discard_client(self) -> None:
        """Drop the client after a failure; close it in the background so a stalled socket never blocks."""
        client, self._client = self._client, None
        if client is None:
            return
        task = asyncio.get_running_loop().create_task(self._safe_close(client))
        if self._closing is None:
            self._closing = set()
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _safe_close(self, client: C) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._close(client)
        except Exception:  # noqa: S110 - a failing close of a discarded client changes nothing
            pass

    def _down(self, observed: datetime, started: float, message: str) -> ProbeResult:
        return ProbeResult(
            target=self.name,
            kind=self.kind,
            status="down",
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            version=None,
            metrics={},
            error=self._redact(message),
            observed_at=iso(observed),
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


_WAIT = wait_exponential_jitter(multiplier=0.05, max=0.5, jitter=0.05)


def _wait_after(attempt: int) -> float:
    """The pause after attempt number `attempt` (tenacity's exponential backoff with jitter)."""
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # the wait reads attempt_number only
    state.attempt_number = attempt
    return float(_WAIT(state))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it: __cause__/__context__, and what requests/urllib3 wrap without
    chaining (MaxRetryError.reason, ProtocolError('Connection aborted.', ConnectionResetError(...)))."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 10:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        wrapped = [a for a in (*current.args, reason) if isinstance(a, BaseException)]
        todo += [e for e in (current.__cause__ or current.__context__, *wrapped) if e is not None]
    return seen


def closed_transport(exc: BaseException) -> bool:
    """uvloop's answer to a write on a connection the peer has reset (asyncio's would be ConnectionResetError).

    Clients that reuse a connection (redis-py, the neo4j driver) pass it on as a RuntimeError: the connection
    is gone, like a reset, and worth one more attempt on a fresh client.
    """
    return any(isinstance(e, RuntimeError) and str(e).startswith("unable to perform operation on")
               and "closed" in str(e) for e in _chain(exc))


def _is_expected(exc: BaseException) -> bool:
    return any(isinstance(e, OSError | TimeoutError | ConnectionError) for e in _chain(exc)) or closed_transport(exc)


def host_port(url: str) -> str:
    try:
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "?"


def describe_error(exc: BaseException, url: str, timeout: float) -> str:
    """Generic, client-independent messages for the network failures every client shares."""
    where = host_port(url)
    for err in _chain(exc):
        if isinstance(err, ConnectionRefusedError):
            return f"connection refused ({where})"
        if isinstance(err, socket.gaierror):
            return f"cannot resolve host ({where})"
        if isinstance(err, TimeoutError | asyncio.TimeoutError):
            return f"timed out after {timeout:.1f} s"
        if isinstance(err, ConnectionResetError):
            return f"connection reset by peer ({where})"
        if isinstance(err, BrokenPipeError | ConnectionAbortedError):
            return f"connection closed by peer ({where})"
        if isinstance(err, OSError) and err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"host unreachable ({where})"
        if closed_transport(err):
            return f"connection closed by peer ({where})"
    if isinstance(exc, ValueError | TypeError | AttributeError | LookupError):
        # the server answered, but not what its protocol promises (garbage, truncated, wrong types) - or the
        # probe misread it: either way a person needs the host and the parser's complaint, on one line
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"unreadable answer from {where}: {type(exc).__name__}: {first}"[:300]
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
