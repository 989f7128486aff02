"""Writes docs/METRICS.md from the metric catalogs of hulk-ops' own kinds (a test fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from hulk_ops.core.catalog import render_markdown
from hulk_ops.probes import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "METRICS.md"


def render() -> str:
    builtin = [k for k, e in registry.entries().items() if e.dist == registry.BUILTIN]
    catalogs = {k: (registry.display_name(k), c) for k in builtin if (c := registry.catalog(k)) is not None}
    return render_markdown(catalogs)


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else DOC
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
