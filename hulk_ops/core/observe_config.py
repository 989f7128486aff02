"""Config sections of hulk-ops watching itself: `telemetry:`, `notify:` and `silences:`.

    telemetry:                       # traces: off unless an endpoint is set (then OTLP over HTTP)
      otlp_endpoint: http://127.0.0.1:4318/v1/traces
      headers: {authorization: "Bearer ${OTLP_TOKEN}"}    # secrets
      service_name: hulk-ops
      sample_ratio: 1.0
    notify:
      group_wait_s: 30               # a new root cause must fail this long before its incident opens
      update_interval_s: 120         # changes of an open incident are sent at most this often
      webhooks:
        - {name: oncall, url: "https://hooks.slack.com/services/${SLACK_PATH}", format: slack}
        - {name: am, url: "http://127.0.0.1:9093/api/v2/alerts", format: alertmanager,
           headers: {authorization: "Bearer ${AM_TOKEN}"}, resend_s: 60}   # re-posted while open
        - {name: payments, url: ..., match: {labels: {team: payments}, kinds: [postgres], severities: [critical]}}
      runbook_url: https://wiki.example/runbooks/hulk-ops   # default; a target's own `runbook_url` wins
    silences:                        # maintenance windows (the dashboard adds more, kept in Redis)
      - {targets: [orders-db], start: 2025-06-01T22:00:00Z, end: 2025-06-01T23:00:00Z,
         author: ana, reason: "minor version upgrade"}
      - {selector: {env: staging}, start: ..., end: ..., author: ..., reason: ...}

Target names in `silences[].targets` must exist (checked by `hulk_ops.core.config.parse_config`).
A webhook with `match` gets the incidents whose root cause matches (labels, kind, severity), and then
every later notice of those incidents (their resolve included), whatever their severity by then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportSettings(_Strict):
    """Backend metrics on the collector's /metrics (hulk_ops/collectors/backend_export.py)."""

    enabled: bool = True
    max_series: int = Field(50_000, ge=0, le=10_000_000,
                            description="series exported per scrape at most; the excess is dropped and counted")


class TelemetrySettings(_Strict):
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint; unset: tracing is off")
    headers: dict[str, SecretStr] = {}
    service_name: str = "hulk-ops"
    sample_ratio: float = Field(1.0, ge=0, le=1)
    timeout_s: float = Field(5.0, gt=0, le=60)

    @property
    def enabled(self) -> bool:
        return bool(self.otlp_endpoint)

    def secrets(self) -> list[str]:
        return [v.get_secret_value() for v in self.headers.values() if v.get_secret_value()]


class WebhookMatch(_Strict):
    """Which incidents a webhook gets, by their root cause: every given condition must hold (none: all)."""

    labels: dict[str, str] = Field(default_factory=dict, description="the root target's labels include these")
    kinds: list[str] = Field(default_factory=list, description="the root target is of one of these kinds")
    severities: list[Literal["critical", "warning"]] = Field(default_factory=list)

    def matches(self, labels: dict[str, str], kind: str, severity: str | None) -> bool:
        return (all(labels.get(k) == v for k, v in self.labels.items())
                and (not self.kinds or kind in self.kinds)
                and (not self.severities or severity in self.severities))


class WebhookSettings(_Strict):
    name: str = Field(pattern=NAME)
    url: SecretStr  # Slack-style webhook URLs carry their token in the path
    format: Literal["generic", "slack", "alertmanager"] = "generic"
    headers: dict[str, SecretStr] = {}
    timeout_s: float = Field(5.0, gt=0, le=60)
    resend_s: float = Field(60.0, ge=1, le=3600, description="alertmanager: open incidents are posted again this "
                            "often; each alert ends 4x this long after its last post unless posted again")
    match: WebhookMatch = WebhookMatch()

    @model_validator(mode="after")
    def _http_url(self) -> WebhookSettings:
        if not self.url.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("url: must start with http:// or https://")
        return self

    def secrets(self) -> list[str]:
        values = [self.url.get_secret_value(), *(v.get_secret_value() for v in self.headers.values())]
        return [v for v in values if v]


class RetrySettings(_Strict):
    backoff_s: float = Field(1.0, gt=0, le=600, description="first retry delay; doubles per attempt")
    backoff_max_s: float = Field(300.0, gt=0, le=86_400)
    max_age_s: float = Field(86_400.0, gt=0, description="a message still undelivered this long is given up")


class NotifySettings(_Strict):
    webhooks: list[WebhookSettings] = []
    group_wait_s: float = Field(30.0, ge=0, le=3600,
                                description="a new root cause must fail this long before its incident opens")
    update_interval_s: float = Field(120.0, ge=0, le=86_400,
                                     description="membership/severity changes are sent at most this often")
    evaluate_s: float = Field(2.0, gt=0, le=60, description="how often incidents are re-evaluated (one read of "
                                                               "the latest results each time)")
    retry: RetrySettings = RetrySettings()
    outbox_max: int = Field(10_000, ge=10, description="undelivered messages kept per webhook (oldest dropped)")
    log_max: int = Field(1_000, ge=10, description="delivery log entries kept")
    dashboard_url: str | None = Field(None, description="linked from notifications")
    runbook_url: str | None = Field(None, description="linked from notifications of targets without their own "
                                    "`runbook_url`")

    @model_validator(mode="after")
    def _unique_names(self) -> NotifySettings:
        names = [w.name for w in self.webhooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"webhooks: duplicate name(s): {', '.join(dupes)}")
        return self

    def secrets(self) -> list[str]:
        return [s for w in self.webhooks for s in w.secrets()]


class SilenceSettings(_Strict):
    """A maintenance window: the targets it names and/or those whose labels match `selector`."""

    targets: list[str] = []
    selector: dict[str, str] = {}
    start: AwareDatetime
    end: AwareDatetime
    author: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _window(self) -> SilenceSettings:
        if not self.targets and not self.selector:
            raise ValueError("a silence needs targets: [...] or selector: {label: value}")
        if self.end <= self.start:
            raise ValueError(f"end ({_fmt(self.end)}) must be after start ({_fmt(self.start)})")
        return self


def _fmt(ts: datetime) -> str:
    return ts.isoformat()
