"""Technology radar: the components we run (radar.yaml), the versions the probes see, and drift.

    components:
      - name: PostgreSQL
        quadrant: Data            # Data | Messaging | Compute | Cloud
        ring: Adopt               # Adopt | Trial | Assess | Hold
        pinned: "16.4"            # the version we standardise on
        notes: Primary OLTP store.
        matches: {kinds: [postgres], targets: ["orders-*"]}   # which targets run it (kinds and/or name globs)
        lifecycle:                # release cycles: a live version belongs to the longest cycle it starts with
          - {version: "16", released: 2023-09-14, eol: 2028-11-09}
        alternatives:             # what a migration away from it could go to
          - {name: CockroachDB, notes: Postgres wire protocol; multi-region writes.}

Drift compares the live version each matching target reports (its newest result's `version`)
with `pinned`, on the numeric `major.minor` found in both (a leading "v" or a product name around
the numbers is ignored, so "v1.30.2" and "PostgreSQL 16.4" parse):
- **major**: the major numbers differ;
- **minor**: same major, different minor (only when `pinned` has a minor);
- **none**: same major (and minor); patch levels never count as drift;
- **unknown**: the live version has no number, or the component is not pinned.
A component's drift is the worst over its live versions.

End of life: a live version belongs to the lifecycle entry whose version numbers it starts with (the
longest such entry: "7.2.4" belongs to "7.2", "16.4" to "16"). It is flagged **past** on or after that
entry's `eol`, and **soon** within `radar.eol_warning_days` (config, default 180) before it. A version with
no matching entry, or an entry without `eol`, is never flagged.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hulk_ops.core.config import Config


class Versioned(Protocol):
    @property
    def version(self) -> str | None: ...


class TargetView(Protocol):
    """What the radar reads of a target: its name, kind and newest result (the read model's TargetView)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def result(self) -> Versioned | None: ...

QUADRANTS = ("Data", "Messaging", "Compute", "Cloud")
RINGS = ("Adopt", "Trial", "Assess", "Hold")
DRIFT_ORDER = ("none", "unknown", "minor", "major")
VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "radar.yaml"


class RadarError(Exception):
    """The radar file cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matches(_Strict):
    kinds: list[str] = []
    targets: list[str] = Field(default_factory=list, description="target name globs")
    namespaces: list[str] = Field(default_factory=list, description="Kubernetes namespace globs whose requests "
                                  "(x actions.prices) are this component's cost")

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: list[str]) -> list[str]:
        from hulk_ops.probes import registry

        unknown = [k for k in kinds if k not in registry.entries()]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r} (known: {registry.known()})")
        return kinds


class Release(_Strict):
    version: str
    released: date | None = None
    eol: date | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _a_version(cls, value: object) -> object:
        if parse_version(str(value)) is None:
            raise ValueError(f"no version number in {value!r}")
        return str(value)

    @model_validator(mode="after")
    def _ordered(self) -> Release:
        if self.released and self.eol and self.eol < self.released:
            raise ValueError(f"{self.version}: eol {self.eol} is before its release {self.released}")
        return self


class Alternative(_Strict):
    name: str = Field(min_length=1, max_length=80)
    notes: str = ""


class Component(_Strict):
    name: str = Field(min_length=1, max_length=80)
    quadrant: Literal["Data", "Messaging", "Compute", "Cloud"]
    ring: Literal["Adopt", "Trial", "Assess", "Hold"]
    pinned: str | None = None
    notes: str = ""
    matches: Matches = Matches()
    lifecycle: list[Release] = []
    alternatives: list[Alternative] = []

    @model_validator(mode="after")
    def _unique_cycles(self) -> Component:
        versions = [parse_version(r.version) for r in self.lifecycle]
        if len(set(versions)) != len(versions):
            raise ValueError(f"{self.name}: a lifecycle version appears twice")
        return self

    def release_of(self, live: str | None) -> Release | None:
        """The lifecycle entry a live version belongs to (the longest one whose numbers it starts with)."""
        have = parse_version(live)
        if have is None:
            return None
        best: Release | None = None
        for release in self.lifecycle:
            cycle = parse_version(release.version) or ()
            if have[:len(cycle)] == cycle and (best is None or len(cycle) > len(parse_version(best.version) or ())):
                best = release
        return best

    @field_validator("pinned", mode="before")
    @classmethod
    def _pinned_version(cls, value: object) -> object:
        if value is not None and parse_version(str(value)) is None:
            raise ValueError(f"no version number in {value!r}")
        return None if value is None else str(value)


class RadarFile(_Strict):
    components: list[Component]

    @model_validator(mode="after")
    def _unique(self) -> RadarFile:
        names = [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate component names: {', '.join(duplicates)}")
        return self


def parse_version(text: str | None) -> tuple[int, ...] | None:
    match = VERSION.search(text or "")
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def drift(pinned: str | None, live: str | None) -> str:
    want, have = parse_version(pinned), parse_version(live)
    if want is None or have is None:
        return "unknown"
    if want[0] != have[0]:
        return "major"
    if len(want) > 1 and (len(have) < 2 or want[1] != have[1]):
        return "minor"
    return "none"


@dataclass(frozen=True, slots=True)
class RadarEntry:
    component: Component
    live: dict[str, list[str]]  # version -> targets reporting it ("" for targets without a version)

    @property
    def drift(self) -> str:
        levels = [drift(self.component.pinned, v) for v in self.live if v]
        if not levels:
            return "unknown"
        return max(levels, key=DRIFT_ORDER.index)

    def drifting(self) -> dict[str, str]:
        """version -> its drift, for the versions that drift (major or minor)."""
        return {v: d for v in self.live if v and (d := drift(self.component.pinned, v)) in ("major", "minor")}


@dataclass(frozen=True, slots=True)
class EolFlag:
    component: str
    version: str  # the live version
    cycle: str  # the lifecycle entry it belongs to
    eol: date
    days_left: int  # negative: past its end of life
    targets: tuple[str, ...]

    @property
    def past(self) -> bool:
        return self.days_left <= 0

    def text(self) -> str:
        when = (f"past its end of life since {self.eol} ({-self.days_left} days)" if self.past
                else f"reaches its end of life on {self.eol} (in {self.days_left} days)")
        shown = ", ".join(self.targets[:5]) + (f" and {len(self.targets) - 5} more" if len(self.targets) > 5 else "")
        return f"{self.component} {self.version} ({self.cycle}) {when}: {shown}"


def eol_flags(entries: list[RadarEntry], today: date, warning_days: int) -> list[EolFlag]:
    """Live versions past their end of life or within `warning_days` of it, most urgent first."""
    out = []
    for entry in entries:
        for version, targets in entry.live.items():
            release = entry.component.release_of(version)
            if release is None or release.eol is None:
                continue
            days_left = (release.eol - today).days
            if days_left <= warning_days:
                out.append(EolFlag(entry.component.name, version, release.version, release.eol, days_left,
                                   tuple(targets)))
    return sorted(out, key=lambda f: (f.days_left, f.component, f.version))


def radar_path(config: Config) -> Path:
    configured = config.dashboard.radar_file
    if not configured:
        return DEFAULT_FILE
    path = Path(configured)
    if not path.is_absolute() and config.source not in ("<memory>", ""):
        path = Path(config.source).resolve().parent / path
    return path


_LOADED: dict[tuple[str, float], RadarFile] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_radar(path: Path) -> RadarFile:
    """The validated radar file (parsed again only when its modification time changes)."""
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        key = None
    if key in _LOADED:
        return _LOADED[key]
    radar = _load(path)
    if key is not None:
        _LOADED.clear()
        _LOADED[key] = radar
    return radar


def _load(path: Path) -> RadarFile:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise RadarError(f"{path}: no such file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RadarError(f"{path}: cannot read: {exc}") from None
    try:
        return RadarFile.model_validate(raw or {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {loc}: {msg}" if loc else f"{path}: {msg}")
        raise RadarError("\n".join(lines)) from None


def radar_entries(radar: RadarFile, views: Sequence[TargetView]) -> list[RadarEntry]:
    seen = [v for v in views if v.result is not None]
    by_kind: dict[str, list[TargetView]] = {}
    for view in seen:
        by_kind.setdefault(view.kind, []).append(view)
    out = []
    for component in radar.components:
        matched = {v.name: v for kind in component.matches.kinds for v in by_kind.get(kind, [])}
        for glob in component.matches.targets:
            matched.update((v.name, v) for v in seen if fnmatch.fnmatchcase(v.name, glob))
        live: dict[str, list[str]] = {}
        for view in sorted(matched.values(), key=lambda v: v.name):
            live.setdefault(view.result.version or "", []).append(view.name)  # type: ignore[union-attr]
        out.append(RadarEntry(component, live))
    return out


def with_rings(radar: RadarFile, rings: dict[str, str]) -> RadarFile:
    """The radar with each component in the ring now in force (moves made after radar.yaml was written)."""
    return radar.model_copy(update={"components": [
        c.model_copy(update={"ring": rings[c.name]}) if rings.get(c.name, c.ring) != c.ring else c
        for c in radar.components]})
