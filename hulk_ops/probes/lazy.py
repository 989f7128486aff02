"""Client libraries imported on first use.

Validating a config (every `hulk-ops report`, the dashboard, `config check`) defines every kind's Settings but
never talks to a backend; importing every client library with them (aiohttp, kubernetes, nats, asyncpg, httpx,
...) costs about half a second per process. A kind module binds its client as

    if TYPE_CHECKING:
        import aiohttp
    else:
        aiohttp = lazy_module("aiohttp")

and the library is imported on the first attribute read. The stand-in is not put in `sys.modules` (other code
importing the library gets the real module as usual), and the import goes through `importlib.import_module`,
whose per-module locks make a first use from several threads at once safe (the stdlib's LazyLoader is not on
Python 3.11). Hand-written for those two reasons: ten lines.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Lazy(ModuleType):
    def __getattr__(self, attr: str) -> Any:  # only for names not yet copied into this stand-in
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)
        return value


def lazy_module(name: str) -> ModuleType:
    """A stand-in for the module `name` that imports it on the first attribute read."""
    return _Lazy(name)
