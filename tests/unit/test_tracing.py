"""hulk_ops.observe.tracing: off without a provider, spans and cleaned attributes with one, trace ids in logs."""

from __future__ import annotations

import json

import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN

from hulk_ops.core.observe_config import TelemetrySettings
from hulk_ops.observe import logs, tracing


def recording() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def test_off_by_default_hands_out_the_api_non_recording_span() -> None:
    assert tracing.configure(TelemetrySettings()) is None
    with tracing.span("probe redis", target="cache") as span:
        assert span is INVALID_SPAN and not span.is_recording()
        assert tracing.ids() is None and tracing.current_link() is None
        tracing.annotate(span, status="up")  # harmless no-ops
        tracing.fail(span, "x")


def test_spans_nest_and_attributes_are_prefixed_and_scrubbed() -> None:
    exporter, provider = recording()
    previous = tracing.install(provider)
    tracing.set_secrets(["hunter2-token"])
    try:
        with tracing.span("outer", audit_id="a-17", name="purge") as outer:
            link = tracing.current_link()
            with tracing.span("inner", links=[link], url="redis://ops:pw-in-url@10.0.0.5:6379/0",
                              note="header was hunter2-token", missing=None, count=3, ratio=0.5,
                              targets=["a", "b"], attributes={"http.status_code": 200}):
                pass
            tracing.fail(outer, "failed with hunter2-token")
    finally:
        tracing.install(previous)
        tracing.set_secrets([])
    inner, outer_span = exporter.get_finished_spans()
    assert inner.parent.span_id == outer_span.context.span_id
    assert inner.links[0].context.span_id == outer_span.context.span_id
    assert dict(inner.attributes) == {
        "hulk.url": "redis://ops:***@10.0.0.5:6379/0", "hulk.note": "header was ***", "hulk.count": 3,
        "hulk.ratio": 0.5, "hulk.targets": "['a', 'b']", "http.status_code": 200}
    assert outer_span.attributes["hulk.audit_id"] == "a-17" and outer_span.attributes["hulk.name"] == "purge"
    assert outer_span.status.description == "failed with ***"


def test_log_lines_inside_a_span_carry_its_trace_id(capsys) -> None:
    exporter, provider = recording()
    previous = tracing.install(provider)
    logs.configure("INFO")
    try:
        log = structlog.get_logger("t")
        with tracing.span("work"):
            log.info("inside")
        log.info("outside")
    finally:
        tracing.install(previous)
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.strip().splitlines())
    (span,) = exporter.get_finished_spans()
    assert inside["trace_id"] == format(span.context.trace_id, "032x")
    assert inside["span_id"] == format(span.context.span_id, "016x")
    assert "trace_id" not in outside


def test_configure_with_an_endpoint_builds_an_otlp_provider_and_shuts_it_down() -> None:
    settings = TelemetrySettings(otlp_endpoint="http://127.0.0.1:1/v1/traces", headers={"authorization": "Bearer x"},
                                 service_name="hulk-ops-unit")
    provider = tracing.configure(settings)
    try:
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "hulk-ops-unit"
        with tracing.span("x") as span:
            assert span.is_recording()
    finally:
        tracing.shutdown(0.2)  # the export to a closed port fails quietly within the bound
    with tracing.span("y") as span:
        assert span is INVALID_SPAN


def test_exceptions_are_recorded_scrubbed_and_control_flow_is_not_a_failure() -> None:
    import asyncio

    import pytest

    exporter, provider = recording()
    previous = tracing.install(provider)
    tracing.set_secrets(["hunter2-token"])
    try:
        with pytest.raises(ValueError), tracing.span("boom"):
            raise ValueError("bad redis://u:pw-in-url@h:1 with hunter2-token")
        with pytest.raises(asyncio.CancelledError), tracing.span("cancelled"):
            raise asyncio.CancelledError
    finally:
        tracing.install(previous)
        tracing.set_secrets([])
    boom, cancelled = exporter.get_finished_spans()
    assert boom.status.status_code.name == "ERROR"
    assert boom.status.description == "ValueError: bad redis://u:***@h:1 with ***"
    assert [dict(e.attributes) for e in boom.events] == [
        {"exception.type": "ValueError", "exception.message": "bad redis://u:***@h:1 with ***"}]
    assert cancelled.status.status_code.name == "UNSET" and cancelled.attributes["hulk.outcome"] == "CancelledError"
