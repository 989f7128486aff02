"""Client libraries imported on first use, with the standard library's `importlib.util.LazyLoader`.

Validating a config (every `hulk-ops report`, the dashboard, `config check`) defines every kind's Settings but
never talks to a backend; importing every client library with them (aiohttp, kubernetes, nats, asyncpg, httpx,
...) costs about half a second per process. A kind module binds its client as

    if TYPE_CHECKING:
        import aiohttp
    else:
        aiohttp = lazy_module("aiohttp")

and the library loads on the first attribute read. The kind's `warm()` reads one, so the registry loads it before
the first probe, on the collector's thread, outside every probe's timeout.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, loaded on first attribute access (at once when already imported)."""
    found = sys.modules.get(name)
    if found is not None:
        return found
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
