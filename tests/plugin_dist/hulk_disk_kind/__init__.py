"""hulk-ops kind `disk`: space and inodes of the filesystem holding a path (os.statvfs).

`url` is file:///path. Latency is the statvfs call. Metrics: size_bytes, used_bytes, free_bytes (available to
unprivileged users), used_pct, inodes_free. Down when the path does not exist.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import field_validator

from hulk_ops.sdk import (
    CapacityItem,
    Catalog,
    Measurement,
    MetricSpec,
    Probe,
    ProbeFailure,
    ProbeResult,
    TargetSettings,
    breach_number,
    limit_of,
)


class Settings(TargetSettings):
    kind: Literal["disk"]

    @field_validator("url")
    @classmethod
    def _file_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "file" or not parts.path.startswith("/"):
            raise ValueError(f"must be file:///absolute/path, got {value!r}")
        return value


class DiskProbe(Probe[Settings, str]):
    kind = "disk"

    async def _connect(self) -> str:
        return unquote(urlsplit(self.settings.url).path)  # nothing to connect: the "client" is the path

    async def _measure(self, path: str) -> Measurement:
        try:
            st = await asyncio.to_thread(os.statvfs, path)
        except FileNotFoundError:
            raise ProbeFailure(f"no such path: {path}") from None
        size = st.f_blocks * st.f_frsize
        used = size - st.f_bfree * st.f_frsize
        metrics = {"size_bytes": size, "used_bytes": used, "free_bytes": st.f_bavail * st.f_frsize,
                   "used_pct": round(100.0 * used / size, 2) if size else None, "inodes_free": st.f_favail}
        return Measurement(metrics=metrics, details={"path": path})


def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    if "used_bytes" in m:
        yield CapacityItem("space", m["used_bytes"], limit_of(m, "size_bytes"), "bytes", "used_bytes")


CATALOG = Catalog([
    MetricSpec("size_bytes", "Size of the filesystem", unit="bytes"),
    MetricSpec("used_bytes", "Space used", unit="bytes"),
    MetricSpec("free_bytes", "Space available to unprivileged users", unit="bytes"),
    MetricSpec("used_pct", "Space used of the size", unit="ratio", scale=0.01, prom="used_ratio"),
    MetricSpec("inodes_free", "Inodes available to unprivileged users"),
])
DEFAULT_RULES = ("used_pct > 90", "latency_ms > 1000")


def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    if metric == "used_pct":
        return f"disk {result.details.get('path', '?')}: {breach_number(value)}% used"
    return None  # latency_ms: the generic message


TRACKED_METRICS = ("used_bytes", "used_pct")
DISPLAY_NAME = "Disk"
EXAMPLE = {"kind": "disk", "url": "file:///var/lib"}

PROBE = DiskProbe
