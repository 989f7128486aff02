"""Config sections of guarded actions: `actions:` (limits, prices, approval), `audit:` and `auth:`.

    audit:
      url: postgresql://hulk@127.0.0.1:5432/ops      # the append-only audit log (required for any action)
      schema_name: hulk_audit
    actions:
      four_eyes: true            # writes on targets labelled env: production wait for another admin
      approval_ttl_s: 3600       # a waiting request expires after this
      prices: {cpu_hour: 0.031, gib_hour: 0.004, gpu_hour: 1.89}
      scale:                     # a deployment without bounds here cannot be scaled (deny by default)
        - {target: k8s-main, namespace: shop, deployment: web, min: 2, max: 12}
      runpod: {budget_usd: 50, max_hours: 24, max_gpu_count: 8}
      endpoint_workers:          # the only serverless endpoints whose worker limits may be changed, and how far
        - {target: gpu-cloud, endpoint: vllm7x2k9q4p1a, min: 0, max: 8, usd_per_worker_hour: 0.69}
    auth:
      login_hint: "Demo users: viewer / viewer-demo, operator / operator-demo, admin / admin-demo"
      users:                     # local users (hulk-ops user add appends here)
        - {name: ana, role: operator, password_hash: "$argon2id$...", token_id: 1a2b3c4d, token_hash: "$argon2id$..."}
      oidc: {roles_claim: groups, role_map: {ops-admins: admin, ops: operator}, default_role: viewer}
      session_idle_s: 43200      # a local user's dashboard session ends after this long without a page run
      login_throttle: {failures: 5, window_s: 300, lockout_s: 300}   # per user name and per client address

A target is made read-only with `read_only: true` on the target itself (TargetSettings).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceSettings(_Strict):
    """Unit prices in USD for cost previews (Kubernetes requests; RunPod when the API gives no price)."""

    cpu_hour: float = Field(0.0, ge=0, description="per requested CPU core and hour")
    gib_hour: float = Field(0.0, ge=0, description="per requested GiB of memory and hour")
    gpu_hour: float = Field(0.0, ge=0, description="per requested GPU and hour")


class ScaleBounds(_Strict):
    target: str = Field(pattern=NAME)
    namespace: str = Field(pattern=K8S_NAME)
    deployment: str = Field(pattern=K8S_NAME)
    min: int = Field(0, ge=0)
    max: int = Field(ge=0, le=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> ScaleBounds:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class EndpointWorkerBounds(_Strict):
    target: str = Field(pattern=NAME)
    endpoint: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    min: int = Field(0, ge=0, description="lowest workersMin allowed")
    max: int = Field(ge=0, le=1000, description="highest workersMax allowed")
    usd_per_worker_hour: float | None = Field(None, ge=0, description="a worker's price (default: prices.gpu_hour)")

    @model_validator(mode="after")
    def _ordered(self) -> EndpointWorkerBounds:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class RunPodLimits(_Strict):
    budget_usd: float = Field(100.0, gt=0, description="cap on price x count x max runtime of one launch or job")
    max_hours: float = Field(24.0, gt=0, le=24 * 31, description="longest max runtime a launch may ask for")
    max_gpu_count: int = Field(8, ge=1, le=64)


class ActionsSettings(_Strict):
    four_eyes: bool = Field(True, description="production writes wait for an admin other than the requester")
    approval_ttl_s: float = Field(3600.0, ge=60, le=7 * 86_400)
    prices: PriceSettings = PriceSettings()
    scale: list[ScaleBounds] = []
    runpod: RunPodLimits = RunPodLimits()
    endpoint_workers: list[EndpointWorkerBounds] = []
    conflict_retries: int = Field(3, ge=1, le=10, description="re-reads after a stale resourceVersion (409)")
    timeout_s: float = Field(30.0, gt=0, le=600, description="bound on one backend call of an action")

    def bounds(self, target: str, namespace: str, deployment: str) -> ScaleBounds | None:
        for entry in self.scale:
            if (entry.target, entry.namespace, entry.deployment) == (target, namespace, deployment):
                return entry
        return None

    def worker_bounds(self, target: str, endpoint: str) -> EndpointWorkerBounds | None:
        for entry in self.endpoint_workers:
            if (entry.target, entry.endpoint) == (target, endpoint):
                return entry
        return None


class AuditSettings(_Strict):
    url: str | None = Field(None, description="postgresql://... (no audit database: every action is refused)")
    schema_name: str = Field("hulk_audit", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    timeout_s: float = Field(5.0, gt=0, le=60)
    lock_timeout_s: float = Field(60.0, gt=0, le=3600, description="wait for a concurrent submit with the same key")

    @field_validator("url")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value


class LocalUser(_Strict):
    name: str = Field(pattern=NAME)
    role: Role
    password_hash: str | None = Field(None, pattern=r"^\$argon2(id|i|d)\$")
    token_id: str | None = Field(None, pattern=r"^[0-9a-f]{8,32}$")
    token_hash: str | None = Field(None, pattern=r"^\$argon2(id|i|d)\$")

    @model_validator(mode="after")
    def _token_pair(self) -> LocalUser:
        if (self.token_id is None) != (self.token_hash is None):
            raise ValueError("token_id and token_hash go together")
        return self


class OidcSettings(_Strict):
    provider: str | None = Field(None, description="named provider of [auth.<provider>] in secrets.toml")
    roles_claim: str = Field("groups", min_length=1)
    role_map: dict[str, Role] = Field(default_factory=dict, description="claim value -> role (default: same name)")
    default_role: Role | None = Field("viewer", description="role of a signed-in user whose claim maps to none")


class LoginThrottle(_Strict):
    """Failed dashboard sign-ins: `failures` within `window_s` for one user name, or from one client address,
    refuse further attempts (before any password hashing) for `lockout_s`."""

    failures: int = Field(5, ge=1, le=1000)
    window_s: float = Field(300.0, gt=0, le=86_400)
    lockout_s: float = Field(300.0, gt=0, le=86_400)


class AuthSettings(_Strict):
    users: list[LocalUser] = []
    oidc: OidcSettings | None = None
    login_hint: str | None = Field(None, max_length=500, description="shown on the login page (demo users)")
    session_idle_s: float = Field(12 * 3600.0, ge=1, le=30 * 86_400,
                                  description="a local user's session ends after this long without a page run")
    login_throttle: LoginThrottle = LoginThrottle()

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[LocalUser]) -> list[LocalUser]:
        seen: set[str] = set()
        for user in users:
            if user.name in seen:
                raise ValueError(f"duplicate user {user.name!r}")
            seen.add(user.name)
        ids = [u.token_id for u in users if u.token_id]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate token_id")
        return users

    @property
    def enabled(self) -> bool:
        return bool(self.users) or self.oidc is not None

    def user(self, name: str) -> LocalUser | None:
        return next((u for u in self.users if u.name == name), None)


def check_references(actions: ActionsSettings, targets: dict[str, str]) -> list[str]:
    """Problems of `actions.scale` / `actions.endpoint_workers` entries whose target is unknown or of the wrong
    kind (target name -> kind)."""
    problems = []
    refs = [("scale", "kubernetes", i, b.target) for i, b in enumerate(actions.scale)]
    refs += [("endpoint_workers", "runpod", i, b.target) for i, b in enumerate(actions.endpoint_workers)]
    for section, wanted, i, target in refs:
        kind = targets.get(target)
        if kind is None:
            problems.append(f"actions.{section}[{i}].target: unknown target {target!r}")
        elif kind != wanted:
            problems.append(f"actions.{section}[{i}].target: {target!r} is a {kind} target, not {wanted}")
    return problems
