"""Targets found by discovery (hulk_ops/collectors/discovery.py), merged with the file's, and the secret-free copy
the collector publishes in the store for the dashboard."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from pydantic import SecretStr, ValidationError

from hulk_ops.core.config import Config, ConfigError, TargetSettings, _check_graph, redact_url


def merge(static: Config, discovered: Sequence[TargetSettings]) -> tuple[Config, list[str], list[str]]:
    """Static targets plus the discovered ones: (config, names that clashed with a static target, problems).

    A discovered target naming a dependency that does not exist is left out (a problem); a cycle among them
    leaves out every discovered target with dependencies."""
    names = {t.name for t in static.targets}
    clashes = [t.name for t in discovered if t.name in names]
    extra = [t for t in discovered if t.name not in names]
    known = names | {t.name for t in extra}
    problems = [f"{t.origin}: depends-on: unknown target(s) {', '.join(sorted(set(t.depends_on) - known))}"
                for t in extra if set(t.depends_on) - known]
    extra = [t for t in extra if not set(t.depends_on) - known]
    try:
        _check_graph([*static.targets, *extra], "discovery")
    except ConfigError as exc:
        problems.append(str(exc))
        extra = [t for t in extra if not t.depends_on]
    return static.model_copy(update={"targets": [*static.targets, *extra]}), clashes, problems


def public(targets: Sequence[TargetSettings]) -> bytes:
    """The discovered targets for the dashboard: no secret fields, URL credentials masked."""
    out = []
    for t in targets:
        data = t.model_dump(mode="json", exclude={k for k, v in t.__dict__.items() if isinstance(v, SecretStr)})
        data["url"] = redact_url(t.url)
        out.append(data)
    return orjson.dumps(out)


def from_public(raw: bytes | str | None) -> list[TargetSettings]:
    """The dashboard's side of `public()`: targets that do not validate without their secrets are left out."""
    from hulk_ops.probes import registry

    if not raw:
        return []
    found: list[TargetSettings] = []
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(registry.settings_model(item["kind"]).model_validate(item))
        except (ValidationError, LookupError, TypeError):  # LookupError: an unknown or broken kind
            continue
    return found
