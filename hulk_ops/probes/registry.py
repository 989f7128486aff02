"""Which backend kinds exist and where their code lives.

Modules are imported lazily: a config pays only for the client libraries of the kinds it uses.
Adding a kind is one line here plus its module (see docs/ARCHITECTURE.md, "adding a backend kind").
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hulk_ops.core.config import TargetSettings
    from hulk_ops.core.rules import RuleSet
    from hulk_ops.probes.base import Probe

KINDS: dict[str, str] = {
    "redis": "hulk_ops.probes.redis",
    "postgres": "hulk_ops.probes.postgres",
    "nats": "hulk_ops.probes.nats",
    "qdrant": "hulk_ops.probes.qdrant",
    "neo4j": "hulk_ops.probes.neo4j",
    "prometheus": "hulk_ops.probes.prometheus",
    "http": "hulk_ops.probes.http",
    "tcp": "hulk_ops.probes.tcp",
    "runpod": "hulk_ops.probes.runpod",
    "kubernetes": "hulk_ops.probes.kubernetes",
}


def module(kind: str) -> ModuleType:
    try:
        path = KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})") from None
    return importlib.import_module(path)


def settings_model(kind: str) -> type[TargetSettings]:
    return module(kind).Settings


def build_probe(settings: TargetSettings, rules: RuleSet | None = None, retries: int = 0) -> Probe:
    probe_cls: type[Probe] = module(settings.kind).PROBE
    return probe_cls(settings, rules=rules, retries=retries)


def tracked_metrics(kind: str) -> tuple[str, ...]:
    """Metric globs whose values the store keeps as history (capacity trends, cost)."""
    return tuple(getattr(module(kind), "TRACKED_METRICS", ()))


def preload(kinds: set[str] | list[str]) -> None:
    """Import the modules of these kinds now (some client libraries configure logging at import)."""
    for kind in kinds:
        module(kind)
