"""Prometheus probe (prometheus-api-client `PrometheusConnect`, run on worker threads).

One cycle makes three calls, sharing one deadline of `timeout_s`: `/api/v1/status/buildinfo`
(the version; its round trip is the latency), `/api/v1/targets?state=active` and `/api/v1/alerts`.
Metrics: targets_up, targets_down, targets_unknown (scrape targets by health), alerts_firing,
alerts_pending; over https tls.cert_expiry_days and tls.cert_expired (the certificate read by a handshake
of its own, hourly). Details: `down_targets` (pool, url, error, last_scrape of each down scrape target)
and `alerts` (each firing alert: name, labels, severity, state, active_at, summary, value), for
the incident timeline. A down scrape target makes the Prometheus degraded (rule `targets_down > 0`).

`queries: [{name, promql, interval_s}]` are not pulled here: the collector pulls each on its own
interval into a named series of the store (see `hulk_ops/collectors/prometheus_pull.py`).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import requests
from prometheus_api_client import PrometheusApiClientException
from pydantic import Field, SecretStr, field_validator, model_validator

from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import Strict
from hulk_ops.core.tls_config import VerifyTlsAlias
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe
from hulk_ops.probes.prometheus_api import PromClient

QUERY_NAME = r"^[A-Za-z_][A-Za-z0-9_:.-]{0,99}$"
DOWN_TARGETS_MAX = 50


class QuerySettings(Strict):
    name: str = Field(pattern=QUERY_NAME, description="series name (label sets are appended)")
    promql: str = Field(min_length=1)
    interval_s: float | None = Field(None, gt=0, le=86_400, description="default: the target's interval_s")
    max_series: int = Field(50, ge=1, le=1000, description="label sets kept per pull (the rest are dropped)")


class Settings(VerifyTlsAlias):
    kind: Literal["prometheus"]
    tls_schemes = ("https://",)
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    max_alerts: int = Field(100, ge=0, le=10_000, description="firing alerts kept in details")
    queries: list[QuerySettings] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL of the Prometheus server, got {value!r}")
        return value

    @model_validator(mode="after")
    def _unique_queries(self) -> Settings:
        seen: set[str] = set()
        for i, query in enumerate(self.queries):
            if query.name in seen:
                raise ValueError(f"queries[{i}].name: duplicate query name {query.name!r}")
            seen.add(query.name)
        return self

    def series_fields(self) -> list[tuple[str, str]]:
        return [(f"queries[{i}].name", q.name) for i, q in enumerate(self.queries)]

    def query_interval(self, query: QuerySettings) -> float:
        return query.interval_s or self.interval_s


def build_client(settings: Settings, timeout_s: float | None = None) -> PromClient:
    headers = {}
    if settings.bearer_token:
        headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
    auth = None
    if settings.username:
        auth = (settings.username, settings.password.get_secret_value() if settings.password else "")
    return PromClient(settings.url, timeout_s or settings.timeout_s, headers=headers, auth=auth,
                      tls=settings.tls_options(), name=settings.name)


class PrometheusProbe(Probe[Settings, PromClient]):
    kind = "prometheus"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cert = tls.CertWatch()

    async def _connect(self) -> PromClient:
        return build_client(self.settings)

    async def _close(self, client: PromClient) -> None:
        client.close()

    async def _measure(self, client: PromClient) -> Measurement:
        deadline = time.monotonic() + self.settings.timeout_s
        latency_ms, build, targets, alerts = await client.call(snapshot, client, deadline)
        metrics, details = target_health(targets.get("activeTargets") or [])
        alert_metrics, details["alerts"] = alert_view(alerts.get("alerts") or [], self.settings.max_alerts)
        metrics.update(alert_metrics)
        if self.settings.url.startswith("https://"):
            metrics.update(tls.cert_metrics(await self._cert.get(lambda: client.call(client.peer_cert))))
        return Measurement(latency_ms=latency_ms, version=build.get("version") or None, metrics=metrics,
                           details=details)

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, PrometheusApiClientException):
            text = str(exc)
            if "Code 401" in text or "Code 403" in text:
                return f"authentication failed: {text[:200]}"
            return f"Prometheus API error: {text[:300]}"
        if isinstance(exc, requests.exceptions.SSLError):
            return f"TLS error: {exc}"[:300]
        if isinstance(exc, requests.exceptions.JSONDecodeError | KeyError):
            return f"not a Prometheus API at {self.settings.url} (unexpected response)"
        return None


def snapshot(client: PromClient, deadline: float) -> tuple[float, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The three blocking calls of one cycle (on a worker thread); none starts after the deadline."""
    started = time.perf_counter()
    try:
        build = client.get_json("/api/v1/status/buildinfo")
    except PrometheusApiClientException as exc:
        if "Code 404" not in str(exc):  # before 2.14 there is no buildinfo: reachable, version unknown
            raise
        build = {}
    latency_ms = (time.perf_counter() - started) * 1000
    _check_deadline(deadline, client)
    targets = client.api.get_targets(state="active")
    _check_deadline(deadline, client)
    alerts = client.get_json("/api/v1/alerts")
    return latency_ms, build, targets, alerts


def _check_deadline(deadline: float, client: PromClient) -> None:
    if time.monotonic() >= deadline:
        raise TimeoutError(f"timed out after {client.timeout_s:.1f} s")


def target_health(active: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = {"up": 0, "down": 0, "unknown": 0}
    down: list[dict[str, Any]] = []
    for target in active:
        health = target.get("health", "unknown")
        counts[health if health in counts else "unknown"] += 1
        if health == "down" and len(down) < DOWN_TARGETS_MAX:
            down.append({"pool": target.get("scrapePool"), "url": target.get("scrapeUrl"),
                         "error": target.get("lastError") or None, "last_scrape": target.get("lastScrape")})
    metrics = {f"targets_{health}": n for health, n in counts.items()}
    return metrics, {"down_targets": down}


def alert_view(alerts: list[dict[str, Any]], limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    firing = [a for a in alerts if a.get("state") == "firing"]
    pending = sum(1 for a in alerts if a.get("state") == "pending")
    firing.sort(key=lambda a: (a.get("activeAt") or "", a.get("labels", {}).get("alertname", "")))
    shown = []
    for alert in firing[:limit]:
        labels = dict(alert.get("labels") or {})
        annotations = alert.get("annotations") or {}
        shown.append({
            "name": labels.pop("alertname", "?"),
            "severity": labels.get("severity"),
            "state": alert.get("state"),
            "active_at": alert.get("activeAt"),
            "summary": annotations.get("summary") or annotations.get("description"),
            "labels": labels,
            "value": alert.get("value"),
        })
    return {"alerts_firing": len(firing), "alerts_pending": pending}, shown


# Metrics kept as history by the store.
TRACKED_METRICS = ("targets_up", "targets_down", "alerts_firing")

CATALOG = Catalog([
    MetricSpec("targets_up", "Scrape targets up"),
    MetricSpec("targets_down", "Scrape targets down"),
    MetricSpec("targets_unknown", "Scrape targets not scraped yet"),
    MetricSpec("alerts_firing", "Alerts firing"),
    MetricSpec("alerts_pending", "Alerts pending"),
    *tls.METRICS,
])

DISPLAY_NAME = "Prometheus"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = ("targets_down > 0", "latency_ms > 1000", *tls.RULES)
# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "prometheus", "url": "http://127.0.0.1:9090"}

PROBE = PrometheusProbe
