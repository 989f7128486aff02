"""The OpenAPI 3.1 document of the API, served at /api/v1/openapi.json (validated by the tests)."""

from __future__ import annotations

from typing import Any

from hulk_ops.collectors.telemetry import version


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


TIME = _nullable("string", format="date-time")
STATUS = {"type": "string", "enum": ["up", "degraded", "down", "stale", "unknown"]}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "message": {"type": "string"}}}}},
    "Freshness": {"type": "object", "properties": {
        "read_at": TIME, "last_write_age_s": _nullable("number"), "collector_stale": {"type": "boolean"}}},
    "TargetSummary": {"type": "object", "required": ["name", "kind", "status", "stale", "labels"], "properties": {
        "name": {"type": "string"}, "kind": {"type": "string"}, "status": STATUS,
        "latency_ms": _nullable("number"), "observed_at": TIME, "age_s": _nullable("number"),
        "stale": {"type": "boolean"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "breaker": {"type": "string", "enum": ["closed", "opened", "half-opened"]},
        "silenced_until": TIME}},
    "Result": {"type": "object", "properties": {
        "target": {"type": "string"}, "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["up", "degraded", "down"]}, "latency_ms": _nullable("number"),
        "version": _nullable("string"), "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "error": _nullable("string"), "observed_at": {"type": "string", "format": "date-time"},
        "details": {"type": "object"}}},
    "TargetDetail": {"allOf": [_ref("TargetSummary"), {"type": "object", "properties": {
        "interval_s": {"type": "number"}, "timeout_s": {"type": "number"},
        "depends_on": {"type": "array", "items": {"type": "string"}}, "runbook_url": _nullable("string"),
        "read_only": {"type": "boolean"}, "latest": {"oneOf": [_ref("Result"), {"type": "null"}]}}}]},
    "History": {"type": "object", "properties": {
        "target": {"type": "string"}, "start": TIME, "end": TIME, "window_s": {"type": "number"},
        "samples": {"type": "integer"}, "every_nth": {"type": "integer"},
        "points": {"type": "array", "items": {"type": "object", "properties": {
            "ts": TIME, "status": {"type": "string"}, "latency_ms": _nullable("number")}}}}},
    "Incident": {"type": "object", "properties": {
        "id": _nullable("string"), "root_cause": {"type": "string"},
        "status": {"type": "string", "enum": ["down", "degraded"]},
        "severity": {"type": "string", "enum": ["critical", "warning"]}, "kind": {"type": "string"},
        "dependents": {"type": "array", "items": {"type": "string"}}, "error": _nullable("string"),
        "first_seen": TIME, "opened_at": TIME, "notified": {"type": "boolean"}}},
    "ResolvedIncident": {"type": "object", "properties": {
        "id": {"type": "string"}, "root_cause": {"type": "string"}, "resolved_at": TIME,
        "summary": {"type": "string"}}},
    "Event": {"type": "object", "properties": {
        "id": {"type": "string"}, "at": TIME, "stored_at": TIME,
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}},
}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": _answer("no token, or an invalid one", _ref("Error")),
    "429": _answer("over the per-token rate limit (see Retry-After)", _ref("Error")),
    "503": _answer("the store cannot be read", _ref("Error")),
}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _get(summary: str, ok: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
         public: bool = False, more: dict[str, Any] | None = None) -> dict[str, Any]:
    responses = {"200": _answer("OK", ok), **({} if public else ERRORS), **(more or {})}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if public:
        op["security"] = []
    return {"get": op}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": kind}}


def document() -> dict[str, Any]:
    not_found = {"404": _answer("no such target", _ref("Error"))}
    bad = {"400": _answer("a malformed parameter", _ref("Error"))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hulk-ops API", "version": version(),
                 "description": "Read-only: what the collectors stored (no backend is called)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": _get("the process is up", {"type": "object"}, public=True),
            "/api/v1/openapi.json": _get("this document", {"type": "object"}, public=True),
            "/metrics": {"get": {"summary": "Prometheus exposition of the API's request counts", "security": [],
                                 "responses": {"200": {"description": "text/plain; version=0.0.4",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/api/v1/targets": _get(
                "every target's status", {"type": "object", "properties": {
                    "targets": {"type": "array", "items": _ref("TargetSummary")}, "freshness": _ref("Freshness")}},
                [_query("kind", "only this kind"), _query("status", "only this status")]),
            "/api/v1/targets/{name}": _get("one target with its latest result and metrics", _ref("TargetDetail"),
                                           [NAME], more=not_found),
            "/api/v1/targets/{name}/history": _get(
                "probe samples over a window", _ref("History"),
                [NAME, _query("window", "90s, 15m, 1h (default), 7d; at most 31d")], more={**not_found, **bad}),
            "/api/v1/incidents": _get(
                "open incidents by root cause, and recently resolved ones", {"type": "object", "properties": {
                    "open": {"type": "array", "items": _ref("Incident")},
                    "recent": {"type": "array", "items": _ref("ResolvedIncident")}}},
                [_query("recent", "how many resolved incidents (default 20)", "integer")], more=bad),
            "/api/v1/events": _get(
                "state changes and other events, newest first", {"type": "object", "properties": {
                    "events": {"type": "array", "items": _ref("Event")}, "since": TIME,
                    "limit": {"type": "integer"}}},
                [_query("since", "unix seconds or ISO 8601 time"), _query("limit", "1-1000 (default 100)", "integer"),
                 _query("target", "only this target's events")], more={**not_found, **bad}),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token `hulk-ops user add` printed, or one of "
                                                          "api.tokens"}},
        },
    }
