"""What a backend kind plugin needs from hulk-ops, and nothing else (docs/PLUGINS.md).

A kind is one module named by an entry point in the group ``hulk_ops.kinds``. It declares ``Settings`` (a
`TargetSettings` subclass with ``kind: Literal["<name>"]``) and ``PROBE`` (a `Probe` subclass), and may declare
``CATALOG``, ``DEFAULT_RULES``, ``describe_breach`` (messages built with `breach_number` and `breach_between`),
``TRACKED_METRICS``, ``DISPLAY_NAME``, ``capacity`` and ``EXAMPLE``.
"""

from hulk_ops.core.breach import between as breach_between
from hulk_ops.core.breach import number as breach_number
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import TargetSettings
from hulk_ops.core.kind import CapacityItem, limit_of
from hulk_ops.core.model import ProbeResult
from hulk_ops.probes.base import Measurement, Occasional, Probe, ProbeFailure

__all__ = [
    "CapacityItem",
    "Catalog",
    "Measurement",
    "MetricSpec",
    "Occasional",
    "Probe",
    "ProbeFailure",
    "ProbeResult",
    "TargetSettings",
    "breach_between",
    "breach_number",
    "limit_of",
]
