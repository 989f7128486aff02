"""Traces of hulk-ops itself (OpenTelemetry), off by default.

Without `telemetry.otlp_endpoint` no tracer provider is set and every `span()` hands out the API's
non-recording `INVALID_SPAN` without touching a tracer or the context: no attribute is even built
(see docs/ARCHITECTURE.md, "Traces", for the measured cost). With an endpoint, `configure()`
installs an SDK provider that batches spans to the OTLP/HTTP exporter. A global provider set by
someone else (e.g. `opentelemetry-instrument`) is adopted by `configure()` when no endpoint is set.

Spans hulk-ops emits (attribute keys carry the `hulk.` prefix):

    collector.cycle        one scheduled run of one target (queue wait, breaker, probe, hand-off)
      probe <kind>         target, kind, status, retries, breaker, latency_ms, error
    collector.periodic     one run of other periodic work (a Prometheus query pull)
    store.write            one batched write; links to the cycles whose results it carries
    notify.evaluate / notify.deliver
    dashboard.page         one full render of a dashboard page (hulk_ops/dashboard/traced.py)
    action.<name>          one step of a guarded action (hulk_ops/actions/guard.py): step (dry_run, submit, approve,
                           reject, refuse), action, target, object, user, roles, via, outcome, request_id,
                           idempotency_key, approver, audit_id (the row holding the outcome),
                           audit_started_id (the 'started' row whose id the Permit carries), audit_approved_id

For other packages (the guarded actions): `with tracing.span("action.scale", audit_id=..., target=...)`.
Keyword attributes become `hulk.<key>`; values are cleaned: None dropped, non-scalars made text,
URL credentials and every configured secret replaced by `***`. Never pass a secret on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, ProxyTracerProvider, Span, SpanContext, Status, StatusCode

from hulk_ops.core.observe_config import TelemetrySettings

PREFIX = "hulk."
# exceptions that end a block without anything having failed: cancellation, Streamlit's stop/rerun
CONTROL_FLOW = frozenset({"CancelledError", "GeneratorExit", "StopException", "RerunException"})
MAX_TEXT = 500
_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_SECRETS: list[str] = []
_tracer: trace.Tracer = trace.get_tracer("hulk_ops")  # a ProxyTracer: the no-op tracer until a provider exists
_provider: Any = None


def configure(settings: TelemetrySettings, secrets: Iterable[str] = (), component: str = "collector") -> Any:
    """Install an SDK provider with the OTLP exporter when an endpoint is configured; else stay no-op."""
    set_secrets(secrets)
    if not settings.enabled:
        external = trace.get_tracer_provider()
        if not isinstance(external, ProxyTracerProvider) and _provider is None:
            install(external)
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": settings.service_name, "hulk.component": component})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint,
                                headers={k: v.get_secret_value() for k, v in settings.headers.items()},
                                timeout=settings.timeout_s)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return provider


def install(provider: Any) -> Any:
    """Use this tracer provider (None: back to the no-op API tracer); returns the previous one (tests)."""
    global _tracer, _provider
    previous = _provider
    _provider = provider
    _tracer = provider.get_tracer("hulk_ops") if provider is not None else trace.get_tracer("hulk_ops")
    return previous


def shutdown(timeout_s: float = 2.0) -> None:
    """Flush what is batched (bounded) and stop the exporter."""
    provider = _provider
    if provider is None:
        return
    provider.force_flush(int(timeout_s * 1000))
    provider.shutdown()
    install(None)


def set_secrets(secrets: Iterable[str]) -> None:
    _SECRETS[:] = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)


class _Off:
    """What `span()` returns while tracing is off: stateless, so one instance serves every caller."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(self, *_exc: object) -> None:
        return None


_OFF = _Off()


def span(name: str, /, links: Sequence[SpanContext] | None = None, attributes: Mapping[str, Any] | None = None,
         **attrs: Any) -> AbstractContextManager[Span]:
    """A span around the block, child of the current one. Exceptions are recorded and re-raised.

    `links` and `attributes` (raw keys, no prefix) are reserved; any other keyword is an attribute."""
    if _provider is None:
        return _OFF
    return _recording(name, links, attributes, attrs)


@contextmanager
def _recording(name: str, links: Sequence[SpanContext] | None, attributes: Mapping[str, Any] | None,
               attrs: dict[str, Any]) -> Iterator[Span]:
    link_objs = [Link(c) for c in links] if links else None
    with _tracer.start_as_current_span(name, links=link_objs, record_exception=False,
                                       set_status_on_exception=False) as current:
        if current.is_recording() and (attrs or attributes):
            current.set_attributes(clean(attrs, attributes))
        try:
            yield current
        except BaseException as exc:
            _exception(current, exc)
            raise


def _exception(current: Span, exc: BaseException) -> None:
    """Record an exception (scrubbed: the SDK's own record_exception would export the raw message)."""
    kind = type(exc).__name__
    if kind in CONTROL_FLOW:
        current.set_attribute(PREFIX + "outcome", kind)
        return
    current.add_event("exception", {"exception.type": kind, "exception.message": scrub(str(exc))})
    current.set_status(Status(StatusCode.ERROR, scrub(f"{kind}: {exc}")))


def annotate(current: Span, **attrs: Any) -> None:
    """Add attributes to a span after the fact (a no-op on a non-recording span)."""
    if current.is_recording():
        current.set_attributes(clean(attrs))


def note(**attrs: Any) -> None:
    """Add attributes to the current span, if tracing is on (e.g. an id learnt deep inside the traced block)."""
    if _provider is not None:
        annotate(trace.get_current_span(), **attrs)


def fail(current: Span, message: str | None) -> None:
    if current.is_recording():
        current.set_status(Status(StatusCode.ERROR, scrub(message or "failed")))


def current_link() -> SpanContext | None:
    """The current span's context, to link a later batched operation to it (None when not tracing)."""
    if _provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid and context.trace_flags.sampled else None


def ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as hex, or None (logs carry them)."""
    if _provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def clean(attrs: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is not None:
            out[PREFIX + key] = _value(value)
    for key, value in (raw or {}).items():
        if value is not None:
            out[key] = _value(value)
    return out


def _value(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        return value
    return scrub(value if isinstance(value, str) else str(value))


def scrub(text: str) -> str:
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text[:MAX_TEXT]
