"""Which backend kinds exist, and everything hulk-ops knows about each, read from its module.

Kinds are entry points of the group ``hulk_ops.kinds`` (hulk-ops' own in its pyproject.toml, third parties' in
theirs); each names a module with the kind contract (docs/PLUGINS.md): ``Settings`` and ``PROBE``, optionally
``CATALOG``, ``DEFAULT_RULES``, ``describe_breach``, ``TRACKED_METRICS``, ``DISPLAY_NAME``, ``capacity`` and
``EXAMPLE``.

Modules are imported lazily: a config pays only for the client libraries of the kinds it uses. A plugin that
cannot be imported, breaks the contract or takes a name already registered is reported (`problems()`, and the
error of a target using it) and leaves every other kind working.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, get_args

if TYPE_CHECKING:
    from hulk_ops.core.breach import Describer
    from hulk_ops.core.catalog import Catalog
    from hulk_ops.core.config import TargetSettings
    from hulk_ops.core.kind import CapacityFn
    from hulk_ops.core.model import JSON
    from hulk_ops.core.rules import RuleSet
    from hulk_ops.probes.base import Probe

GROUP = "hulk_ops.kinds"
BUILTIN = "hulk-ops"  # the distribution whose kinds win a name clash
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class KindError(LookupError):
    """A kind that cannot be used: unknown, or its plugin is broken (the message names which and why)."""


@dataclass(frozen=True, slots=True)
class KindEntry:
    name: str
    module: str
    dist: str  # the distribution declaring it


@functools.cache
def _discover() -> tuple[dict[str, KindEntry], tuple[str, ...]]:
    found: dict[str, KindEntry] = {}
    problems: list[str] = []

    def dist_of(ep: EntryPoint) -> str:
        dist = getattr(ep, "dist", None)  # None for entry points not read from an installed distribution
        return dist.name if dist is not None else "?"

    # hulk-ops' own kinds first: a plugin cannot replace a built-in by taking its name
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (dist_of(e) != BUILTIN, dist_of(e))):
        dist = dist_of(ep)
        where = f"plugin {dist} ({ep.name} = {ep.value})"
        if not NAME.match(ep.name):
            problems.append(f"{where}: kind name must match {NAME.pattern}")
        elif ep.attr:
            problems.append(f"{where}: the entry point must name a module, not an attribute")
        elif ep.name in found:
            taken = found[ep.name]
            if taken.module != ep.module or taken.dist != dist:
                problems.append(f"{where}: ignored, kind {ep.name!r} is already registered by {taken.dist} "
                                f"({taken.module})")
        else:
            found[ep.name] = KindEntry(ep.name, ep.module, dist)
    if not any(e.dist == BUILTIN for e in found.values()):
        problems.append(f"hulk-ops' own kinds are not among the {GROUP} entry points: its installed metadata is "
                        "stale (run `uv sync`, or `pip install -e .` in a checkout)")
    return found, tuple(problems)


_lock = threading.Lock()
_broken: dict[str, str] = {}


def refresh() -> None:
    """Read the entry points again (after installing a plugin into the running interpreter, in tests)."""
    with _lock:
        _discover.cache_clear()
        _broken.clear()


def entries() -> dict[str, KindEntry]:
    return _discover()[0]


def kinds() -> tuple[str, ...]:
    """The registered kind names, sorted."""
    return tuple(sorted(entries()))


def known() -> str:
    """The kind names for an error message."""
    return ", ".join(kinds())


def problems() -> list[str]:
    """Every plugin problem found so far: bad entry points, clashes, and modules that failed to load."""
    return [*_discover()[1], *(_broken[k] for k in sorted(_broken))]


def module(kind: str) -> ModuleType:
    entry = entries().get(kind)
    if entry is None:
        stale = [p for p in _discover()[1] if p.startswith("hulk-ops' own kinds")]
        raise KindError(f"unknown kind {kind!r} (known: {known() or 'none'})" + (f"; {stale[0]}" if stale else ""))
    if kind in _broken:
        raise KindError(_broken[kind])
    try:
        mod = importlib.import_module(entry.module)
    except Exception as exc:  # a plugin's import error is its own, never everyone's
        _broken[kind] = f"kind {kind!r} ({entry.dist}: {entry.module}) failed to import: {type(exc).__name__}: {exc}"
        raise KindError(_broken[kind]) from exc
    wrong = _contract_problem(kind, mod)
    if wrong:
        _broken[kind] = f"kind {kind!r} ({entry.dist}: {entry.module}) {wrong}"
        raise KindError(_broken[kind])
    return mod


def _contract_problem(kind: str, mod: ModuleType) -> str | None:
    from hulk_ops.core.catalog import Catalog
    from hulk_ops.core.config import TargetSettings
    from hulk_ops.probes.base import Probe

    settings = getattr(mod, "Settings", None)
    probe = getattr(mod, "PROBE", None)
    if not (isinstance(settings, type) and issubclass(settings, TargetSettings)):
        return "has no Settings (a TargetSettings subclass)"
    if get_args(settings.model_fields["kind"].annotation) != (kind,):
        return f'has Settings whose kind is not Literal["{kind}"]'
    if not (isinstance(probe, type) and issubclass(probe, Probe)):
        return "has no PROBE (a Probe subclass)"
    if getattr(probe, "kind", None) != kind:
        return f"has a PROBE whose kind is {getattr(probe, 'kind', None)!r}, not {kind!r}"
    catalog = getattr(mod, "CATALOG", None)
    if catalog is not None and not isinstance(catalog, Catalog):
        return "has a CATALOG that is not a Catalog"
    return None


def modules(names: Iterable[str] | None = None) -> dict[str, ModuleType]:
    """The modules of these kinds (default: all) that load; a broken one is left out and in `problems()`."""
    out: dict[str, ModuleType] = {}
    for kind in kinds() if names is None else names:
        try:
            out[kind] = module(kind)
        except KindError:
            continue
    return out


def settings_model(kind: str) -> type[TargetSettings]:
    return module(kind).Settings


_WARMED: set[str] = set()


def _warm(kind: str, kind_module: ModuleType) -> None:
    if kind not in _WARMED:
        _WARMED.add(kind)
        warm = getattr(kind_module, "warm", None)
        if callable(warm):
            warm()


def build_probe(settings: TargetSettings, rules: RuleSet | None = None, retries: int = 0) -> Probe:
    """A probe of the target; the first of a kind first runs the kind's optional `warm()` (loading what its
    client would otherwise load during the first probe, inside its timeout)."""
    kind_module = module(settings.kind)
    _warm(settings.kind, kind_module)
    probe_cls: type[Probe] = kind_module.PROBE
    return probe_cls(settings, rules=rules, retries=retries)


def default_rules(kind: str) -> tuple[str, ...]:
    """The kind's own status rules (the first of the three rule layers)."""
    return tuple(getattr(module(kind), "DEFAULT_RULES", ()))


def breach_describer(kind: str) -> Describer | None:
    """The kind's `describe_breach` (rule messages that name the object), None when it has none."""
    found = getattr(module(kind), "describe_breach", None)
    return found if callable(found) else None


def tracked_metrics(kind: str) -> tuple[str, ...]:
    """Metric globs whose values the store keeps as history (capacity trends, cost)."""
    return tuple(getattr(module(kind), "TRACKED_METRICS", ()))


def catalog(kind: str) -> Catalog | None:
    return getattr(module(kind), "CATALOG", None)


def display_name(kind: str) -> str:
    try:
        return str(getattr(module(kind), "DISPLAY_NAME", kind))
    except KindError:
        return kind


def capacity(kind: str) -> CapacityFn | None:
    """The kind's capacity extractor, None when it has no resource that fills up (or is broken)."""
    try:
        return getattr(module(kind), "capacity", None)
    except KindError:
        return None


def example(kind: str) -> dict[str, JSON] | None:
    """A valid target of the kind without its name (`EXAMPLE`: docs, fuzzers, secret canaries), when declared."""
    found = getattr(module(kind), "EXAMPLE", None)
    return dict(found) if found else None


def url_scheme(kind: str) -> str | None:
    """The URL scheme a target of the kind usually has (its example's), for targets built from a host and port."""
    url = (example(kind) or {}).get("url")
    return url.split("://", 1)[0] if isinstance(url, str) and "://" in url else None


def preload(kinds: set[str] | list[str]) -> None:
    """Import the modules of these kinds and run their `warm()` now, before the collector's event loop starts (some
    client libraries also configure logging at import)."""
    for kind in kinds:
        _warm(kind, module(kind))
