"""The two HTTP routes that set and clear the session cookie (a Streamlit script cannot: it has no HTTP
response of its own, only a WebSocket). server_app.py adds them to Streamlit's server.

- `START_PATH?grant=G&next=/incidents?incident=x`: exchanges the one-time grant the login form stored for the
  signed session cookie, then redirects to `next` (a path on this dashboard, nothing else).
- `END_PATH`: clears the cookie (the sign-out button has already deleted the session in the store), then
  redirects to the dashboard's start page.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import redis
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from hulk_ops.dashboard.sessions import COOKIE, END_PATH, START_PATH

log = logging.getLogger("hulk_ops.dashboard")


def base_path() -> str:
    """Streamlit's `server.baseUrlPath` as "/base" ("" when served at the root)."""
    from streamlit import config

    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def safe_next(value: str | None) -> str:
    """A path on this dashboard (with its query) to go to after sign-in; anything else becomes "/"."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(c in value for c in "\r\n\\"):
        return "/"
    return value


def _cookie_options(request: Request) -> dict[str, Any]:
    return {"path": base_path() or "/", "httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https"}


def start(request: Request) -> RedirectResponse:
    from hulk_ops.dashboard import context

    response = RedirectResponse(base_path() + safe_next(request.query_params.get("next")), status_code=303)
    response.headers["cache-control"] = "no-store"
    try:
        session_id = context.session_store().redeem(request.query_params.get("grant", ""))
    except redis.RedisError as exc:
        log.warning("dashboard sign-in: the store is unreachable, no session cookie set: %s", type(exc).__name__)
        return response
    if session_id:
        response.set_cookie(COOKIE, context.cookie_signer().sign(session_id), **_cookie_options(request))
    return response


def end(request: Request) -> RedirectResponse:
    response = RedirectResponse(base_path() + "/", status_code=303)
    response.headers["cache-control"] = "no-store"
    if COOKIE in request.cookies:  # SameSite=Strict: only a request from the dashboard itself carries it
        options = _cookie_options(request)
        response.delete_cookie(COOKIE, path=options["path"], secure=options["secure"], httponly=True,
                               samesite="strict")
    return response


def routes() -> list[Route]:
    base = base_path()
    # sync endpoints: Starlette runs them in its thread pool, so the blocking store calls never stall the loop
    return [Route(base + START_PATH, start, methods=["GET"]), Route(base + END_PATH, end, methods=["GET"])]
