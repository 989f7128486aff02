"""The `discovery:` section: where targets come from besides the `targets:` list (hulk_ops/collectors/discovery.py)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def namespace_names(value: list[str]) -> list[str]:
    """A pydantic validator: every entry is a Kubernetes namespace name (a DNS label)."""
    for ns in value:
        if not re.match(DNS_LABEL, ns):
            raise ValueError(f"{ns!r} is not a namespace name (lower-case letters, digits, '-', max 63)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KubernetesDiscoverySettings(_Strict):
    """Annotated Services become targets (`hulk-ops.io/kind` required; see the README)."""

    target: str | None = Field(None, description="a `kubernetes` target whose credentials are borrowed")
    in_cluster: bool = Field(False, description="use the pod's service account instead of a target's credentials")
    namespaces: list[str] = Field(default_factory=list, description="namespaces to look in (default: all)")
    refresh_s: float = Field(30.0, ge=1, le=86_400, description="how often the Services are listed")
    interval_s: float | None = Field(None, gt=0, le=86_400, description="probe interval of discovered targets "
                                     "(default: the kinds' default; annotation hulk-ops.io/interval overrides)")

    _namespaces = field_validator("namespaces")(namespace_names)

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesDiscoverySettings:
        if bool(self.target) == self.in_cluster:
            raise ValueError("set exactly one of target (a kubernetes target's name) and in_cluster: true")
        return self


class DiscoverySettings(_Strict):
    kubernetes: KubernetesDiscoverySettings | None = None
