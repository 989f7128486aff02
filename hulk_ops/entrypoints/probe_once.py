"""One-shot probing for `hulk-ops probe`: every target once, concurrently, bounded by its timeout."""

from __future__ import annotations

import asyncio

from hulk_ops.core.config import Config, TargetSettings
from hulk_ops.core.model import ProbeResult
from hulk_ops.entrypoints.bootstrap import build_probe

STATUS_MARK = {"up": "UP", "degraded": "DEGRADED", "down": "DOWN"}


async def probe_once(config: Config, targets: list[TargetSettings]) -> list[ProbeResult]:
    probes = [build_probe(config, t) for t in targets]
    try:
        return list(await asyncio.gather(*(p.check() for p in probes)))
    finally:
        # closing is bounded: a blackholed server cannot hold the terminal
        await asyncio.gather(*(asyncio.wait_for(p.close(), 0.5) for p in probes), return_exceptions=True)


def render_table(results: list[ProbeResult]) -> str:
    rows = [("TARGET", "KIND", "STATUS", "LATENCY", "VERSION", "ERROR")]
    for r in results:
        latency = f"{r.latency_ms:.1f} ms" if r.latency_ms is not None else "-"
        rows.append((r.target, r.kind, STATUS_MARK[r.status], latency, (r.version or "-")[:24], r.error or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows]
    counts = {s: sum(1 for r in results if r.status == s) for s in ("up", "degraded", "down")}
    lines.append(f"\n{counts['up']} up, {counts['degraded']} degraded, {counts['down']} down")
    return "\n".join(line.rstrip() for line in lines)
