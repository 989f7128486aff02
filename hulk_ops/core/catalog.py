"""A kind's metric catalog: every metric its probe may emit, with type, unit, help and labels.

A probe's metrics are a flat mapping of keys to numbers (`used_memory_bytes`, `consumer.ORDERS.billing.pending`).
A catalog entry describes one key pattern, where `<name>` stands for one dot-free segment that becomes a
Prometheus label (`consumer.<stream>.<consumer>.pending` -> labels `stream`, `consumer`). The same catalog serves the
collector's `/metrics` export (`hulk_ops_<kind>_<prom>`, in base units), the rendered docs and the conformance tests
that fail when a probe emits a key outside its catalog.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["gauge", "counter"]
# base units and the suffix Prometheus' naming conventions give them ("" for plain counts)
UNITS: dict[str, str] = {"bytes": "_bytes", "seconds": "_seconds", "ratio": "_ratio", "": ""}
_SEGMENT = re.compile(r"^<([a-z_][a-z0-9_]*)>$")
_PROM_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class CatalogError(ValueError):
    """A catalog that contradicts itself (the kind module is wrong, not the user's config)."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric key pattern of a kind.

    `scale` converts the probe's value to the base unit (milliseconds -> seconds: 0.001; percent -> ratio: 0.01).
    `prom` is the exported name without the `hulk_ops_<kind>_` prefix; it must end with the unit's suffix
    (and `_total` for counters). Left empty, it is derived from the key: placeholders dropped, dots to
    underscores, the unit suffix appended when missing.
    """

    key: str
    help: str
    unit: str = ""
    type: MetricType = "gauge"
    scale: float = 1.0
    prom: str = ""
    segments: tuple[str, ...] = field(init=False, repr=False)
    labels: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise CatalogError(f"{self.key}: unit {self.unit!r} is not one of {sorted(UNITS)}")
        segments = tuple(self.key.split("."))
        labels = tuple(m.group(1) for s in segments if (m := _SEGMENT.match(s)))
        if len(set(labels)) != len(labels):
            raise CatalogError(f"{self.key}: a label appears twice")
        if "target" in labels:
            raise CatalogError(f"{self.key}: the label name 'target' is the exported target's")
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "labels", labels)
        name = self.prom or self._derived_name()
        if not _PROM_NAME.match(name):
            raise CatalogError(f"{self.key}: {name!r} is not a valid Prometheus name")
        suffix = UNITS[self.unit] + ("_total" if self.type == "counter" else "")
        if suffix and not name.endswith(suffix):
            raise CatalogError(f"{self.key}: the exported name {name!r} must end with {suffix!r}")
        object.__setattr__(self, "prom", name)

    def _derived_name(self) -> str:
        name = "_".join(s for s in self.segments if not _SEGMENT.match(s)).replace("-", "_")
        suffix = UNITS[self.unit]
        if suffix and not name.endswith(suffix):
            name += suffix
        if self.type == "counter" and not name.endswith("_total"):
            name += "_total"
        return name

    @property
    def glob(self) -> str:
        """The key as a rule/tracking glob (`consumer.*.*.pending`)."""
        return ".".join("*" if _SEGMENT.match(s) else s for s in self.segments)

    def match(self, key: str) -> dict[str, str] | None:
        """The label values when `key` is an instance of this pattern, else None."""
        parts = key.split(".")
        if len(parts) != len(self.segments):
            return None
        labels: dict[str, str] = {}
        for part, seg in zip(parts, self.segments, strict=True):
            m = _SEGMENT.match(seg)
            if m:
                if not part:
                    return None
                labels[m.group(1)] = part
            elif part != seg:
                return None
        return labels


class Catalog:
    """The metric specs of one kind, looked up by emitted key (exact keys first, then patterns)."""

    __slots__ = ("_exact", "_patterns", "specs")

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self.specs: tuple[MetricSpec, ...] = tuple(specs)
        self._exact: dict[str, MetricSpec] = {}
        self._patterns: list[MetricSpec] = []
        seen: set[str] = set()
        names: dict[str, str] = {}
        for spec in self.specs:
            if spec.key in seen:
                raise CatalogError(f"{spec.key}: declared twice")
            if spec.prom in names:
                raise CatalogError(f"{spec.key}: exported as {spec.prom!r}, like {names[spec.prom]}")
            seen.add(spec.key)
            names[spec.prom] = spec.key
            (self._patterns.append(spec) if spec.labels else self._exact.__setitem__(spec.key, spec))

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def lookup(self, key: str) -> tuple[MetricSpec, dict[str, str]] | None:
        spec = self._exact.get(key)
        if spec is not None:
            return spec, {}
        for spec in self._patterns:
            labels = spec.match(key)
            if labels is not None:
                return spec, labels
        return None

    def outside(self, keys: Iterable[str]) -> list[str]:
        """The keys no entry describes (a conformance test asserts this is empty)."""
        return sorted(k for k in keys if self.lookup(k) is None)


def render_markdown(catalogs: dict[str, tuple[str, Catalog]]) -> str:
    """The metrics reference page: per kind (name -> (display name, catalog)), one row per metric."""
    lines = ["# Metrics by backend kind", "",
             "Generated from each kind's `CATALOG` (`python -m hulk_ops.entrypoints.metrics_doc`); do not edit.",
             "A key's `<label>` segment is one dot-free part of the metric name; it becomes a Prometheus label.",
             "The Prometheus name is `hulk_ops_<kind>_<name>`, in base units (value x scale).", ""]
    for kind, (display, catalog) in sorted(catalogs.items()):
        lines += [f"## {display} (`{kind}`)", "", "| key | Prometheus name | type | unit | scale | labels | help |",
                  "|---|---|---|---|---|---|---|"]
        for spec in catalog:
            labels = ", ".join(spec.labels) or "-"
            lines.append(f"| `{spec.key}` | `hulk_ops_{kind}_{spec.prom}` | {spec.type} | {spec.unit or '-'} | "
                         f"{spec.scale:g} | {labels} | {spec.help} |")
        lines.append("")
    return "\n".join(lines)
