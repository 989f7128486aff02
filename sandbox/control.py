"""The demo's control API: stage incidents on the simulators from a terminal.

    curl -s localhost:8599/                                              # what can be staged
    curl -s -XPOST localhost:8599/sims/qdrant/fault -d '{"mode": "down"}'   # down | stall | slow | null
    curl -s -XPOST localhost:8599/sims/k8s/state/deployment_short \\
         -d '{"namespace": "hulk-prod", "name": "api-gateway", "count": 2}'

Faults and actions are the simulators' own (see each `sandbox/<name>_sim.py` docstring). Serves on
loopback only.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from sandbox.simbase import Simulator


class ControlServer:
    def __init__(self, sims: dict[str, Simulator], port: int) -> None:
        self.sims = sims
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="demo-control", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_post("/sims/{sim}/fault", self._fault)
        app.router.add_post("/sims/{sim}/state/{action}", self._state)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _index(self, _request: web.Request) -> web.Response:
        return web.json_response({name: {"fault": sim.fault, "port": sim.port, "doc": (type(sim).__module__)}
                                  for name, sim in self.sims.items()})

    def _sim(self, request: web.Request) -> Simulator:
        name = request.match_info["sim"]
        if name not in self.sims:
            raise web.HTTPNotFound(text=f"unknown simulator {name!r} (known: {', '.join(self.sims)})\n")
        return self.sims[name]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body must be JSON\n") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object\n")
        return body

    async def _fault(self, request: web.Request) -> web.Response:
        sim, body = self._sim(request), await self._body(request)
        try:
            await asyncio.to_thread(sim.set_fault, body.get("mode"), float(body.get("delay_s", 0) or 0))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response({"sim": request.match_info["sim"], "fault": sim.fault})

    async def _state(self, request: web.Request) -> web.Response:
        sim, body = self._sim(request), await self._body(request)
        action = request.match_info["action"]

        def run() -> Any:
            with sim.lock:  # taken in the worker thread that runs the action
                return sim.control(action, body)

        try:
            result = await asyncio.to_thread(run)
        except KeyError as exc:
            raise web.HTTPNotFound(text=f"unknown action or object: {exc}\n") from None
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response({"ok": True, "result": result}, dumps=lambda o: json.dumps(o, default=str))
