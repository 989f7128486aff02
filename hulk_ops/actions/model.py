"""The domain of guarded actions: who asks (Principal), what they ask (a typed request), what the
dry-run shows (Preview) and what came of it (ActionResult).

Requests are pydantic models with one `action` discriminator; `parse_request()` turns a plain dict
(CLI arguments, the dashboard's form, a stored pending request) into the right one with errors that
name the field. `object_name` is what the user types to confirm (the stream, the deployment, the pod;
for a GPU launch or a serverless job the RunPod target).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from hulk_ops.actions.errors import BadRequest
from hulk_ops.core.action_config import ROLES, Role

Outcome = Literal[
    "dry_run", "refused", "pending_approval", "approved", "rejected", "started", "succeeded", "failed", "replayed",
]
REDACTED = "***"
SECRET_NAME = re.compile(r"(pass|secret|token|key|credential|auth)", re.IGNORECASE)
STREAM_NAME = r"^[^\s\x00-\x1f\x7f.*>/\\]{1,255}$"  # no control characters (not all are \s to every engine)
SUBJECT = r"^[^\s\x00-\x1f\x7f]{1,255}$"
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
POD_ID = r"^[A-Za-z0-9_-]{1,64}$"
# RunPod's SDK writes values into GraphQL text unescaped: these patterns keep quotes and braces out.
GPU_TYPE = r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,127}$"
IMAGE = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$"
SECRET_REF = re.compile(r"\{\{\s*RUNPOD_SECRET_[A-Za-z0-9_.-]+\s*\}\}")  # a reference, not a secret
UNSAFE_VALUE = re.compile(r'["\\\n\r]')


class Principal(BaseModel):
    """An authenticated person; built only by the identity adapters (CLI token, dashboard login, OIDC)."""

    model_config = ConfigDict(frozen=True)
    name: str
    roles: tuple[Role, ...] = ()
    via: Literal["cli", "dashboard", "test"] = "cli"

    @property
    def role(self) -> Role | None:
        """The highest role held (roles are ordered viewer < operator < admin)."""
        held = [r for r in ROLES if r in self.roles]
        return held[-1] if held else None


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    kinds: ClassVar[tuple[str, ...]] = ()
    action: str
    target: str = Field(min_length=1, max_length=128)

    @property
    def object_name(self) -> str:
        raise NotImplementedError

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic's lax mode reads true as 1: a replica count or a GPU count given as a boolean is a mistake
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field is not None and re.search(r"\b(int|float)\b",
                                                                             str(field.annotation)):
                    raise ValueError(f"{name}: must be a number, got {value!r}")
        return data

    def params(self, redact: bool = True) -> dict[str, Any]:
        """Normalised parameters (sorted keys, no None), secrets replaced by *** unless redact=False."""
        data = self.model_dump(mode="python", exclude_none=True)
        return _normalise(data, redact)

    def fingerprint(self) -> str:
        """Identifies the parameters for idempotency (a key reused with other parameters is refused)."""
        return hashlib.sha256(orjson.dumps(self.params(redact=False), option=orjson.OPT_SORT_KEYS)).hexdigest()

    def has_secrets(self) -> bool:
        return self.params(redact=True) != self.params(redact=False)


class PurgeStream(ActionRequest):
    kinds = ("nats",)
    action: Literal["purge_stream"] = "purge_stream"
    stream: str = Field(pattern=STREAM_NAME)
    subject: str | None = Field(None, pattern=SUBJECT, description="only messages on this subject (wildcards ok)")
    keep: int | None = Field(None, ge=1, le=10**12, description="keep the newest N messages")

    @property
    def object_name(self) -> str:
        return self.stream


class ScaleDeployment(ActionRequest):
    kinds = ("kubernetes",)
    action: Literal["scale"] = "scale"
    namespace: str = Field(pattern=K8S_NAME)
    deployment: str = Field(pattern=K8S_NAME)
    replicas: int = Field(ge=0, le=10_000)

    @property
    def object_name(self) -> str:
        return self.deployment


class RestartDeployment(ActionRequest):
    """A rolling restart as `kubectl rollout restart` does it: a new restartedAt annotation on the pod template."""

    kinds = ("kubernetes",)
    action: Literal["restart"] = "restart"
    namespace: str = Field(pattern=K8S_NAME)
    deployment: str = Field(pattern=K8S_NAME)

    @property
    def object_name(self) -> str:
        return self.deployment


class LaunchGpuPod(ActionRequest):
    kinds = ("runpod",)
    action: Literal["launch_gpu"] = "launch_gpu"
    gpu_type: str = Field(pattern=GPU_TYPE)
    count: int = Field(1, ge=1, le=64)
    image: str = Field(pattern=IMAGE)
    max_hours: float = Field(gt=0, le=24 * 31)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    cloud_type: Literal["ALL", "SECURE", "COMMUNITY"] = "ALL"
    env: dict[str, str | SecretStr] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _secret_env(cls, env: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", key):
                raise ValueError(f"invalid environment variable name {key!r}")
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if UNSAFE_VALUE.search(raw):
                raise ValueError(f"environment variable {key}: quotes, backslashes and newlines are not allowed")
            secret = SECRET_NAME.search(key) and not SECRET_REF.fullmatch(raw.strip())
            out[key] = SecretStr(raw) if secret else raw
        return out

    @property
    def object_name(self) -> str:
        return self.target


class RunServerlessJob(ActionRequest):
    kinds = ("runpod",)
    action: Literal["run_job"] = "run_job"
    endpoint: str = Field(pattern=POD_ID)
    input: dict[str, Any] = Field(default_factory=dict)
    max_hours: float = Field(1.0, gt=0, le=24)

    @property
    def object_name(self) -> str:
        return self.target


class EndpointWorkers(ActionRequest):
    """A RunPod serverless endpoint's worker limits (workersMin, workersMax)."""

    kinds = ("runpod",)
    action: Literal["endpoint_workers"] = "endpoint_workers"
    endpoint: str = Field(pattern=POD_ID)
    min_workers: int = Field(ge=0, le=1000)
    max_workers: int = Field(ge=0, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> EndpointWorkers:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) must not exceed max_workers ({self.max_workers})")
        return self

    @property
    def object_name(self) -> str:
        return self.endpoint


class StopPod(ActionRequest):
    kinds = ("runpod",)
    action: Literal["stop_pod"] = "stop_pod"
    pod_id: str = Field(pattern=POD_ID)

    @property
    def object_name(self) -> str:
        return self.pod_id


class TerminatePod(StopPod):
    action: Literal["terminate_pod"] = "terminate_pod"  # type: ignore[assignment]


AnyRequest = Annotated[
    PurgeStream | ScaleDeployment | RestartDeployment | LaunchGpuPod | RunServerlessJob | EndpointWorkers | StopPod
    | TerminatePod,
    Field(discriminator="action"),
]
REQUEST_TYPES: dict[str, type[ActionRequest]] = {
    cls.model_fields["action"].default: cls
    for cls in (PurgeStream, ScaleDeployment, RestartDeployment, LaunchGpuPod, RunServerlessJob, EndpointWorkers,
                StopPod, TerminatePod)
}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyRequest)


PATTERN_HINTS = {
    "stream": "not a stream name (no spaces, '.', '*', '>', '/' or '\\')",
    "subject": "not a subject (no spaces)",
    "namespace": "not a Kubernetes name (lower-case letters, digits, '-' and '.')",
    "deployment": "not a Kubernetes name (lower-case letters, digits, '-' and '.')",
    "pod_id": "not a pod id (letters, digits, '-' and '_')",
    "endpoint": "not an endpoint id (letters, digits, '-' and '_')",
    "image": "not an image reference (letters, digits and . _ / : @ + -)",
    "gpu_type": "not a GPU type id (e.g. 'NVIDIA A100-SXM4-80GB')",
    "name": "letters, digits, '.', '_' and '-' only, at most 64",
}


def parse_request(data: dict[str, Any]) -> ActionRequest:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in REQUEST_TYPES)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "string_pattern_mismatch" and loc in PATTERN_HINTS:
            msg = f"{err['input']!r} is {PATTERN_HINTS[loc]}"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown action (known: {', '.join(REQUEST_TYPES)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class Preview(BaseModel):
    """What a dry-run found: the state before, what would change, its cost and blast radius."""

    summary: str
    object_name: str
    before: dict[str, Any] = Field(default_factory=dict)
    expected: dict[str, Any] = Field(default_factory=dict)
    cost_usd_per_hour_delta: float | None = None
    cost_usd_max: float | None = None
    blast_radius: list[str] = Field(default_factory=list)
    refusal: str | None = None  # the executor's own refusal (over budget, out of bounds, unknown GPU type)


Status = Literal["dry_run", "refused", "pending_approval", "succeeded", "failed", "replayed"]


class ActionResult(BaseModel):
    status: Status
    request_id: str
    action: str
    target: str
    object_name: str
    message: str
    preview: Preview | None = None
    after: dict[str, Any] | None = None
    error: str | None = None
    idempotency_key: str | None = None
    approver: str | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("dry_run", "pending_approval", "succeeded", "replayed")


def _normalise(value: Any, redact: bool, nested: bool = False) -> Any:
    """Sorted, JSON-ready; in nested mappings (env, job input) values under secret-looking keys are redacted."""
    if isinstance(value, SecretStr):
        return REDACTED if redact else value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): REDACTED if redact and nested and _secret_entry(str(k), v) else _normalise(v, redact, True)
                for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_normalise(v, redact, nested) for v in value]
    return value


def _secret_entry(key: str, value: Any) -> bool:
    if not SECRET_NAME.search(key):
        return False
    return not (isinstance(value, str) and SECRET_REF.fullmatch(value.strip()))
