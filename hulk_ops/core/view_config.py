"""Config sections the dashboard's views read: service-level objectives, cost budget and unit prices.

    slo:                          # the default objective of every target over the chosen window
      availability: 99.9          # % of probe samples that are not down (degraded still serves)
      latency_p95_ms: 250         # optional: p95 probe latency objective
    cost:
      monthly_budget_usd: 5000    # RunPod + Kubernetes requests; burn rate and runway are computed against it
      worker_hour_usd: 0.69       # a running serverless worker per hour (default: actions.prices.gpu_hour)
    actions:
      prices: {cpu_hour: 0.031, gib_hour: 0.004, gpu_hour: 1.89}   # shared with the actions' cost previews
    radar:
      eol_warning_days: 180       # flag live versions this close to their end of life (past it: always)
      digest: {enabled: false, hour_utc: 8, webhooks: []}   # a once-a-day low-severity EOL digest
    targets:
      - {name: orders-db, kind: postgres, url: ..., slo: {availability: 99.95}}   # a target's own objective

`actions.prices` is the one place unit prices live: the Cost page prices Kubernetes requests with
it, and the guarded actions use the same section for their cost previews.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _below_100(value: float | None) -> float | None:
    if value is not None and value >= 100:
        raise ValueError("must be below 100 (an objective of 100 % leaves no error budget)")
    return value


class SloSettings(_Strict):
    """The default objective (top-level `slo:`)."""

    availability: float = Field(99.9, gt=0, description="% of probe samples that are not down")
    latency_p95_ms: float | None = Field(None, gt=0, description="p95 probe latency objective")

    _availability = field_validator("availability")(_below_100)


class TargetSlo(_Strict):
    """A target's own objective; a field left out follows the top-level `slo:`."""

    availability: float | None = Field(None, gt=0)
    latency_p95_ms: float | None = Field(None, gt=0)

    _availability = field_validator("availability")(_below_100)


class CostSettings(_Strict):
    monthly_budget_usd: float | None = Field(None, gt=0, description="RunPod + Kubernetes spend per calendar month")
    worker_hour_usd: float | None = Field(None, ge=0, description="a running serverless worker per hour "
                                          "(default: actions.prices.gpu_hour)")


class RadarDigestSettings(_Strict):
    """A once-a-day, low-severity notification listing the live versions past or near their end of life."""

    enabled: bool = False
    hour_utc: int = Field(8, ge=0, le=23, description="the hour (UTC) after which the day's digest is sent")
    webhooks: list[str] = Field(default_factory=list, description="webhook names (default: every webhook)")


class RadarSettings(_Strict):
    eol_warning_days: int = Field(180, ge=0, le=3650, description="flag live versions this many days before EOL")
    digest: RadarDigestSettings = RadarDigestSettings()
