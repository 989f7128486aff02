"""Configuration: one YAML file, validated once at start.

Validation happens in two steps so that a config only pays for the kinds it uses: the common
target fields are read first, then each target is validated by its kind's own settings model
(declared next to its probe in `hulk_ops/probes/<kind>.py`). Every failure becomes one `ConfigError` whose
message names the file, the target and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from hulk_ops.core import rules as rules_mod
from hulk_ops.core.action_config import ActionsSettings, AuditSettings, AuthSettings, check_references
from hulk_ops.core.api_config import ApiSettings
from hulk_ops.core.discovery_config import DiscoverySettings
from hulk_ops.core.observe_config import ExportSettings, NotifySettings, SilenceSettings, TelemetrySettings
from hulk_ops.core.view_config import CostSettings, RadarSettings, SloSettings, TargetSlo

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: same YAML, ~20x faster than pure Python


class ConfigError(Exception):
    """A configuration problem a person can fix; the message says where and what."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentinelSettings(Strict):
    """The store behind Redis Sentinel: clients ask the sentinels for the master and follow a failover.

    A batch counts as stored once the master and `min_replicas` replicas have it (WAIT; fewer when fewer
    replicas are connected, e.g. a promoted master whose old peer is gone): a failover then loses none."""

    master: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    addresses: list[str] = Field(min_length=1, max_length=16, description="sentinels as host:port")
    db: int = Field(0, ge=0, le=15)
    password: SecretStr | None = Field(None, description="the master's and replicas' password")
    sentinel_password: SecretStr | None = Field(None, description="the sentinels' own password")
    min_replicas: int = Field(1, ge=0, le=10, description="replicas that must have a batch before it counts")
    ack_timeout_ms: int = Field(1000, ge=10, le=60_000, description="how long a batch waits for them")

    @field_validator("addresses")
    @classmethod
    def _host_port(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{address!r} is not host:port")
        return addresses

    def endpoints(self) -> list[tuple[str, int]]:
        return [(a.rpartition(":")[0].strip("[]"), int(a.rpartition(":")[2])) for a in self.addresses]

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.password, self.sentinel_password) if s is not None]


class RollupSettings(Strict):
    """The long-range tier: per-target hour and day summaries (hulk_ops/collectors/rollups.py)."""

    enabled: bool = Field(True, description="collectors write hour and day summaries as hours close")
    hourly_days: int = Field(35, ge=2, le=400, description="days the hour summaries are kept")
    daily_days: int = Field(400, ge=7, le=3660, description="days the day summaries are kept")


class StoreSettings(Strict):
    """Where the store lives: one Redis (`redis_url`), the master Redis Sentinel names (`sentinel`), or a Redis
    Cluster (`cluster_url`, any node of it: the clients learn the others from it). One of the three."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    sentinel: SentinelSettings | None = Field(None, description="Redis Sentinel instead of redis_url")
    cluster_url: str | None = Field(None, description="redis://host:port of any node of a Redis Cluster")
    prefix: str = Field("hulk:", pattern=r"^[A-Za-z0-9:._-]{1,64}$")
    retention_h: float = Field(24.0, gt=0, le=24 * 90)
    events_max: int = Field(100_000, ge=100)
    rollups: RollupSettings = Field(default_factory=RollupSettings)

    @field_validator("cluster_url")
    @classmethod
    def _cluster_node(cls, url: str | None) -> str | None:
        if url is None:
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a redis://host:port URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or port is None:
            raise ValueError("must be redis://host:port (or rediss://) naming one node of the cluster")
        if parts.path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0: leave the /db part out")
        return url

    @model_validator(mode="after")
    def _one_topology(self) -> StoreSettings:
        if self.cluster_url is not None and self.sentinel is not None:
            raise ValueError("cluster_url and sentinel exclude each other: the store is a Redis Cluster or a "
                             "Sentinel-managed master, not both")
        if self.cluster_url is not None and "redis_url" in self.model_fields_set:
            raise ValueError("cluster_url and redis_url exclude each other: name the cluster's node in cluster_url "
                             "only")
        return self

    @property
    def cluster(self) -> bool:
        return self.cluster_url is not None

    @property
    def url(self) -> str:
        """The URL clients connect to: the cluster's node, else redis_url (unused under Sentinel)."""
        return self.cluster_url if self.cluster_url is not None else self.redis_url


class BreakerSettings(Strict):
    failures: int = Field(3, ge=1, description="consecutive down results that open the breaker")
    reset_s: float = Field(30.0, gt=0, description="how long it stays open before one trial probe")


class ShardingSettings(Strict):
    """Several collectors share the targets (docs/scaling.md). Off by default: one collector probes all."""

    enabled: bool = False
    engine: Literal["redis"] = Field("redis", description="where membership leases live (Redis SET PX + renewal)")
    url: str | None = Field(None, description="engine URL (default: the store's)")
    replica: str | None = Field(None, pattern=NAME_PATTERN,
                                description="this collector's id (default: $HULK_OPS_REPLICA or host-pid)")
    membership_ttl_s: float = Field(5.0, ge=0.3, le=300, description="a member not renewed for this long is gone")
    sync_s: float | None = Field(None, gt=0, le=60, description="renew + read members every (default: ttl / 5)")
    handover_s: float = Field(5.0, gt=0, le=300, description="a join or leave takes effect this long after it")
    max_clock_skew_s: float = Field(0.25, ge=0, le=10, description="how far collector clocks may disagree")
    fail_open: bool = Field(True, description="engine unreachable: keep probing the last known share")

    @property
    def sync_every_s(self) -> float:
        return self.sync_s if self.sync_s is not None else self.membership_ttl_s / 5

    @model_validator(mode="after")
    def _periods_fit(self) -> ShardingSettings:
        if self.sync_every_s > self.membership_ttl_s / 2:
            raise ValueError(f"sync_s ({self.sync_every_s}) must be at most membership_ttl_s / 2 "
                             f"({self.membership_ttl_s / 2}), or one late renewal drops the replica")
        if self.handover_s < 2 * self.sync_every_s:
            raise ValueError(f"handover_s ({self.handover_s}) must be at least 2 x sync_s ({self.sync_every_s}), "
                             "so every replica hears of a join or leave before it takes effect")
        return self


class CollectorSettings(Strict):
    concurrency: int = Field(256, ge=1, le=100_000)
    retries: int = Field(1, ge=0, le=10, description="extra attempts for transient errors, inside timeout_s")
    jitter_pct: float = Field(5.0, ge=0, le=50, description="random delay added to each start, % of interval")
    breaker: BreakerSettings = BreakerSettings()
    batch_max: int = Field(500, ge=1)
    flush_interval_s: float = Field(0.2, gt=0, le=10)
    buffer_max: int = Field(100_000, ge=100, le=10_000_000,
                            description="results kept in memory while the store is down; past it the oldest go")
    sharding: ShardingSettings = ShardingSettings()


class DashboardSettings(Strict):
    title: str = "hulk-ops"
    refresh_s: float = Field(5.0, ge=1, le=3600)
    radar_file: str | None = Field(None, description="technology radar YAML (relative: to this config file); "
                                   "default: radar.yaml of the hulk-ops checkout")


class TargetSettings(Strict):
    """Fields every target has; each kind's settings model extends this one."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: str
    url: str = Field(min_length=1)
    interval_s: float = Field(15.0, gt=0, le=86_400)
    timeout_s: float = Field(5.0, gt=0, le=600)
    labels: dict[str, str] = {}
    depends_on: list[str] = []
    rules: list[str] = []
    read_only: bool = Field(False, description="no action is offered for this target and the guard refuses any")
    origin: str | None = Field(None, description="set by discovery, e.g. 'kubernetes: hulk-prod/cache' "
                               "(None: written in the config file)")
    slo: TargetSlo | None = None
    runbook_url: str | None = Field(None, description="linked from this target's notifications")

    @field_validator("rules")
    @classmethod
    def _rules_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            rules_mod.parse_rule(text)
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        # an unset timeout follows a short interval down (interval 2 s -> timeout 2 s, not the default 5 s)
        if isinstance(data, dict) and "timeout_s" not in data:
            interval = data.get("interval_s")
            if isinstance(interval, int | float) and not isinstance(interval, bool) and 0 < interval < 5:
                data = {**data, "timeout_s": interval}
        return data

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> TargetSettings:
        if self.timeout_s > self.interval_s:
            raise ValueError(f"timeout_s ({self.timeout_s}) must not exceed interval_s ({self.interval_s})")
        return self

    def series_fields(self) -> list[tuple[str, str]]:
        """(field, series name) of each store series this target feeds; names are unique in a config."""
        return []

    def secrets(self) -> list[str]:
        """Secret values of this target (for redaction); kinds with secret fields extend it."""
        found = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        password = url_password(self.url)
        return [s for s in [*found, password] if s]


class Config(Strict):
    store: StoreSettings = StoreSettings()
    collector: CollectorSettings = CollectorSettings()
    dashboard: DashboardSettings = DashboardSettings()
    audit: AuditSettings = AuditSettings()
    actions: ActionsSettings = ActionsSettings()
    auth: AuthSettings = AuthSettings()
    slo: SloSettings = SloSettings()
    cost: CostSettings = CostSettings()
    radar: RadarSettings = RadarSettings()
    rules: dict[str, list[str]] = {}
    targets: list[TargetSettings] = []
    source: str = "<memory>"
    telemetry: TelemetrySettings = TelemetrySettings()
    export: ExportSettings = ExportSettings()
    notify: NotifySettings = NotifySettings()
    silences: list[SilenceSettings] = []
    discovery: DiscoverySettings = DiscoverySettings()
    api: ApiSettings = ApiSettings()
    # rule sets by (kind, kind overrides, target rules): targets whose layers are alike share one (immutable
    # but for a per-metric-name memo), not ~1.5 KB of parsed rules each
    _rule_sets: dict[tuple[str, tuple[str, ...], tuple[str, ...]], rules_mod.RuleSet] = PrivateAttr(
        default_factory=dict)

    def target(self, name: str) -> TargetSettings:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def slo_for(self, target: TargetSettings) -> SloSettings:
        """The target's objective: its own `slo:` fields over the top-level `slo:`."""
        own = target.slo.model_dump(exclude_none=True) if target.slo else {}
        return self.slo.model_copy(update=own) if own else self.slo

    def rule_set(self, target: TargetSettings) -> rules_mod.RuleSet:
        overrides = self.rules.get(target.kind, [])
        key = (target.kind, tuple(overrides), tuple(target.rules))
        found = self._rule_sets.get(key)
        if found is None:
            found = self._rule_sets[key] = rules_mod.RuleSet.for_target(target.kind, overrides, target.rules)
        return found

    def secrets(self) -> list[str]:
        out: list[str] = [*self.telemetry.secrets(), *self.notify.secrets(), *self.api.secrets()]
        for target in self.targets:
            out.extend(target.secrets())
        if self.store.sentinel is not None:
            out.extend(self.store.sentinel.secrets())
        for url in (self.store.redis_url, self.store.cluster_url or "", self.audit.url or ""):
            password = url_password(url)
            if password:
                out.append(password)
        return out


def url_password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db"""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)



def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate the file; raise ConfigError with a message naming what is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    return parse_config(text, source, environ)


def parse_config(text: str, source: str = "<memory>", environ: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if environ is None else environ)
    try:
        raw = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when built with it)
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {_printable(problem)}") from None
    except (ValueError, IndexError, TypeError, OverflowError) as exc:  # PyYAML's own constructors (`!!float ''`)
        raise ConfigError(f"{source}: invalid YAML: a tagged value cannot be built "
                          f"({type(exc).__name__}: {_short(str(exc))})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (store:, targets:, ...)")
    raw = _interpolate(raw, env, source, ())
    raw_targets = raw.pop("targets", None) or []
    if not isinstance(raw_targets, list):
        raise ConfigError(f"{source}: targets: must be a list of targets")
    context = {"config_dir": str(Path(source).resolve().parent)} if source not in ("<memory>", "") else None
    targets = [_validate_target(item, i, source, context) for i, item in enumerate(raw_targets)]
    _check_graph(targets, source)
    try:
        config = Config.model_validate({**raw, "targets": [], "source": source})
    except ValidationError as exc:
        raise ConfigError(_format(exc, source, prefix=())) from None
    _check_silences(config, {t.name for t in targets}, source)
    webhooks = {w.name for w in config.notify.webhooks}
    for i, name in enumerate(config.radar.digest.webhooks):
        if name not in webhooks:
            raise ConfigError(f"{source}: radar.digest.webhooks[{i}]: unknown webhook {name!r} "
                              f"(notify.webhooks: {', '.join(sorted(webhooks)) or 'none'})")
    for kind, texts in config.rules.items():
        from hulk_ops.probes import registry

        if kind not in registry.entries():
            raise ConfigError(f"{source}: {_path_text(('rules', kind))}: unknown kind (known: {registry.known()})")
        try:
            for text_rule in texts:
                rules_mod.parse_rule(text_rule)
        except ValueError as exc:
            raise ConfigError(f"{source}: {_path_text(('rules', kind))}: {exc}") from None
    k8s = config.discovery.kubernetes
    if k8s is not None and k8s.target is not None and \
            next((t.kind for t in targets if t.name == k8s.target), None) != "kubernetes":
        raise ConfigError(f"{source}: discovery.kubernetes.target: {k8s.target!r} is not a kubernetes target")
    problems = check_references(config.actions, {t.name: t.kind for t in targets})
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return config.model_copy(update={"targets": targets})


def _validate_target(item: Any, index: int, source: str, context: dict[str, str] | None) -> TargetSettings:
    from hulk_ops.probes import registry

    where = f"targets[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{source}: {where}: must be a mapping with name, kind, url, ...")
    name = item.get("name")
    if isinstance(name, str):
        where = f"target {_short(name, 140)} ({where})"
    kind = item.get("kind")
    if kind is None:
        raise ConfigError(f"{source}: {where}: kind: field required (one of: {registry.known()})")
    if not isinstance(kind, str) or kind not in registry.entries():
        raise ConfigError(f"{source}: {where}: kind: unknown kind {_short(kind)} (known: {registry.known()})")
    try:
        model = registry.settings_model(kind)
    except registry.KindError as exc:
        raise ConfigError(f"{source}: {where}: kind: {exc}") from None
    try:
        return model.model_validate(item, context=context)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source, prefix=(where,))) from None


def _printable(text: str) -> str:
    """One line whatever the text holds: control and line-breaking characters escaped as \\x.. / \\u...."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _check_graph(targets: list[TargetSettings], source: str) -> None:
    seen: dict[str, int] = {}
    for i, target in enumerate(targets):
        if target.name in seen:
            raise ConfigError(
                f"{source}: target '{target.name}' (targets[{i}]): name: duplicate of targets[{seen[target.name]}]"
            )
        seen[target.name] = i
    series: dict[str, str] = {}
    for i, target in enumerate(targets):
        for field_name, name in target.series_fields():
            if name in series:
                raise ConfigError(f"{source}: target '{target.name}' (targets[{i}]): {field_name}: series "
                                  f"name {name!r} is already used by target '{series[name]}'")
            series[name] = target.name
    for i, target in enumerate(targets):
        for dep in target.depends_on:
            if dep not in seen:
                raise ConfigError(
                    f"{source}: target '{target.name}' (targets[{i}]): depends_on: unknown target {dep!r}"
                )
            if dep == target.name:
                raise ConfigError(f"{source}: target '{target.name}' (targets[{i}]): depends_on: depends on itself")
    graph = {t.name: t.depends_on for t in targets}
    for name in graph:
        cycle = _find_cycle(name, graph, [])
        if cycle:
            raise ConfigError(f"{source}: depends_on: cycle {' -> '.join(cycle)}")


def _check_silences(config: Config, names: set[str], source: str) -> None:
    for i, silence in enumerate(config.silences):
        unknown = [t for t in silence.targets if t not in names]
        if unknown:
            raise ConfigError(f"{source}: silences[{i}]: targets: unknown target(s) {', '.join(map(repr, unknown))}")


def _find_cycle(node: str, graph: dict[str, list[str]], path: list[str]) -> list[str] | None:
    if node in path:
        return [*path[path.index(node):], node]
    for dep in graph.get(node, []):
        found = _find_cycle(dep, graph, [*path, node])
        if found:
            return found
    return None


MAX_DEPTH = 32  # the deepest real config is about 6 levels; deeper is a mistake (or an alias to itself)


def _interpolate(value: Any, env: dict[str, str], source: str, path: tuple[str | int, ...],
                 parents: tuple[int, ...] = ()) -> Any:
    if isinstance(value, dict | list):
        if id(value) in parents:  # a YAML alias to one of its own ancestors (&a [*a])
            raise ConfigError(f"{source}: {_path_text(path)}: a YAML alias refers to itself (recursive structure)")
        if len(parents) >= MAX_DEPTH:
            raise ConfigError(f"{source}: {_path_text(path)}: nested more than {MAX_DEPTH} levels deep")
        inner = (*parents, id(value))
        if isinstance(value, dict):
            return {k: _interpolate(v, env, source, (*path, str(k)), inner) for k, v in value.items()}
        return [_interpolate(v, env, source, (*path, i), inner) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in env:
                return env[var]
            if default is not None:
                return default
            raise ConfigError(f"{source}: {_path_text(path)}: environment variable {var} is not set")

        return ENV_REF.sub(sub, value)
    return value


_PLAIN_KEY = re.compile(r"[\w-]{1,64}")


def _path_text(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        if not _PLAIN_KEY.fullmatch(part):  # an empty, odd or huge key is quoted, so the message stays readable
            part = _short(part, 40)
        out += f".{part}" if out else part
    return out or "(top level)"


def _format(exc: ValidationError, source: str, prefix: tuple[str, ...]) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [_path_text(err["loc"])] if err["loc"] else []
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "field required"
        lines.append(": ".join([source, *prefix, *loc, redact_url(_printable(msg))]))  # validators quote values
    return "\n".join(lines)
