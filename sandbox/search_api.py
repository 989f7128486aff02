"""`search-api`: a tiny real service for the demo that depends on the vector store, the graph and the cache.

`GET /health` answers 200 with `{"status": "ok"}` when its dependencies answer, 503 with the
failing ones otherwise: when the Qdrant simulator goes down, this service really fails too, so the
demo's incident timeline shows a root cause with a dependent under it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiohttp import web

from sandbox.simbase import HttpSimulator


class SearchApi(HttpSimulator):
    name = "search-api"

    def __init__(self, qdrant_url: str, neo4j_url: str, redis_url: str, port: int | None = None) -> None:
        super().__init__(port=port)
        self.qdrant_url = qdrant_url
        self.dependencies = {"graph": neo4j_url, "cache": redis_url}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)

    async def _health(self, _request: web.Request) -> web.Response:
        checks = await asyncio.gather(self._http_ok(f"{self.qdrant_url}/readyz"),
                                      *(self._tcp_ok(url) for url in self.dependencies.values()))
        names = ["vectors", *self.dependencies]
        failing = [name for name, ok in zip(names, checks, strict=True) if not ok]
        body: dict[str, Any] = {"status": "ok" if not failing else "failing", "failing": failing}
        return web.json_response(body, status=200 if not failing else 503)

    async def _http_ok(self, url: str) -> bool:
        with contextlib.suppress(httpx.HTTPError, OSError):
            async with httpx.AsyncClient(timeout=1.0) as client:
                return (await client.get(url)).status_code == 200
        return False

    async def _tcp_ok(self, url: str) -> bool:
        parts = urlsplit(url)
        try:
            async with asyncio.timeout(1.0):
                _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
