"""Config section of the read-only JSON API (`hulk-ops api`).

    api:
      tokens: ["${HULK_OPS_API_TOKEN}"]   # static read tokens (secrets), besides the users' API tokens
      rate_per_s: 20                      # requests per second per principal (token), bursts up to `burst`
      burst: 40

Authentication is required when any token exists (here, or a user's `hulk-ops user add` token) or
`auth:` is configured; a config with neither serves the API without authentication.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[SecretStr] = Field(default_factory=list, description="static read tokens (any viewer may read)")
    rate_per_s: float = Field(20.0, gt=0, le=10_000, description="sustained requests per second per principal")
    burst: int = Field(40, ge=1, le=100_000, description="requests a principal may make at once")

    def secrets(self) -> list[str]:
        return [t.get_secret_value() for t in self.tokens if t.get_secret_value()]
