"""What every kind's catalog must hold: the metrics its probe emits, its rule globs and its tracked globs.

`assert_catalog_covers(kind)` checks the globs; `assert_emitted_in_catalog(result)` checks one live result. The
built-in kinds are checked against their servers and simulators in tests/integration/test_kind_conformance.py;
a new kind's own test calls both on a result from its server.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hulk_ops.core.catalog import Catalog
from hulk_ops.core.model import ProbeResult
from hulk_ops.probes import registry

if TYPE_CHECKING:
    from sandbox.services import Services

PSEUDO = {"latency_ms"}  # rules may name the probe's latency, which is not a metric of the result


def catalog_of(kind: str) -> Catalog:
    catalog = registry.catalog(kind)
    assert catalog is not None, f"kind {kind!r} declares no CATALOG"
    return catalog


def glob_outside(catalog: Catalog, glob: str) -> bool:
    """True when no key the catalog describes matches the glob (each <label> stood in by one sample value)."""
    samples = [".".join("x" if s.startswith("<") else s for s in spec.segments) for spec in catalog]
    return glob not in PSEUDO and not any(fnmatch.fnmatchcase(sample, glob) for sample in samples)


def assert_catalog_covers(kind: str) -> None:
    catalog = catalog_of(kind)
    rules = [text.split()[0] for text in registry.default_rules(kind)]
    tracked = list(registry.tracked_metrics(kind))
    outside = [g for g in [*rules, *tracked] if glob_outside(catalog, g)]
    assert not outside, f"{kind}: rule or tracked globs outside its catalog: {outside}"


def assert_emitted_in_catalog(result: ProbeResult) -> None:
    assert result.status != "down", result.error
    assert result.metrics, f"{result.kind}: the probe emitted no metric"
    outside = catalog_of(result.kind).outside(result.metrics)
    assert not outside, f"{result.kind}: emitted metrics outside its catalog: {outside}"



def live_source(kind: str) -> Callable[[Services], dict[str, Any]] | None:
    """How to get a target of `kind` on a server that answers, when the kind's own test module
    (tests/integration/test_<kind>_probe.py) declares `live_target(services) -> fields`: the conformance test
    and the fault matrix use it for kinds they have no wiring of their own for."""
    try:
        module = importlib.import_module(f"tests.integration.test_{kind}_probe")
    except ModuleNotFoundError:
        return None
    return getattr(module, "live_target", None)
