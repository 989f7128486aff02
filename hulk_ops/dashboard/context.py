"""Shared, cached resources of the Streamlit app: the config (validated once, and again on each reload) and the
read model.

`reload_config()` (SIGHUP to `hulk-ops dashboard`, or a change of the file with --watch-config) validates the file
again: a good one replaces the cached config and read model, so the next page run shows the new targets; a bad
one is logged and the config in force stays.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from hulk_ops.core.config import Config, ConfigError, load_config
from hulk_ops.dashboard.readmodel import ReadModel

if TYPE_CHECKING:
    from hulk_ops.dashboard.sessions import CookieSigner, LoginThrottleStore, SessionStore

_preloaded: Config | None = None  # validated by `hulk-ops dashboard` before the server started (serve.py)
_reload_lock = threading.Lock()
log = logging.getLogger("hulk_ops.dashboard")


def preload(loaded: Config | None) -> None:
    """Hand over the config the CLI already loaded and validated, so the server does not parse it again."""
    global _preloaded
    _preloaded = loaded


DISCOVERED_EVERY_S = 10.0  # how often the targets the collector discovered are read again


@dataclass
class _Discovered:
    """The discovered targets as last read from the store, and the config they were merged into."""

    raw: bytes | None = None
    at: float = -1e18  # time.monotonic() of the last read
    static: Config | None = None  # the file's config they were merged with
    merged: Config | None = None


_discovered = _Discovered()


def config() -> Config:
    """The config file's, plus the targets the collector discovered (published in the store) when the file has a
    `discovery:` section; a static target wins a name clash, as in the collector."""
    static = _static_config()
    if static.discovery.kubernetes is None:
        return static
    return _with_discovered(static)


def _with_discovered(static: Config) -> Config:
    import time

    now = time.monotonic()
    cache = _discovered
    if cache.static is static and cache.merged is not None and now - cache.at < DISCOVERED_EVERY_S:
        return cache.merged
    raw = _read_discovered(static)
    cache.at = now
    if raw is None:  # the store is unreachable: what was known stays (the pages say the store is down)
        raw = cache.raw if cache.static is static else b"[]"
    if cache.static is not static or raw != cache.raw or cache.merged is None:
        from hulk_ops.core import discovered

        cache.merged = discovered.merge(static, discovered.from_public(raw))[0]
        changed = cache.static is static
        cache.raw, cache.static = raw, static
        if changed:
            read_model.clear()  # its config is the one just replaced
    return cache.merged


def _read_discovered(static: Config) -> bytes | None:
    from hulk_ops.collectors.codec import Keys
    from hulk_ops.collectors.redis_client import CLIENT_ERRORS, sync_client

    try:
        client = sync_client(static.store.url, static.store.sentinel, timeout_s=1.0, client_name="hulk-ops-dashboard",
                             cluster=static.store.cluster)
        try:
            return client.get(Keys(static.store.prefix).discovered) or b"[]"
        finally:
            client.close()
    except CLIENT_ERRORS:
        return None


@st.cache_resource(show_spinner=False)
def _static_config() -> Config:
    path = os.environ.get("HULK_OPS_CONFIG")
    if not path:
        raise RuntimeError("HULK_OPS_CONFIG is not set: start the dashboard with `hulk-ops dashboard --config FILE`")
    if _preloaded is not None and Path(_preloaded.source).resolve() == Path(path).resolve():
        return _preloaded
    return load_config(path)


@st.cache_resource(show_spinner=False)
def read_model() -> ReadModel:
    return ReadModel(config())


def reload_config() -> bool:
    """Validate $HULK_OPS_CONFIG again and, when it is good, serve it from the next page run on."""
    global _preloaded
    path = os.environ.get("HULK_OPS_CONFIG")
    if not path:
        return False
    with _reload_lock:
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("config reload refused, the previous config stays in force: %s", exc)
            return False
        _preloaded = new
        _static_config.clear()
        read_model.clear()
    log.warning("config reloaded from %s: %d targets", path, len(new.targets))
    return True


def session_store() -> SessionStore:
    """Local users' sessions, over the read model's store client (the config in force sets the idle expiry)."""
    from hulk_ops.dashboard.sessions import SessionStore

    loaded = config()
    return SessionStore(read_model().redis, loaded.store.prefix, loaded.auth.session_idle_s)


def login_throttle() -> LoginThrottleStore:
    from hulk_ops.dashboard.sessions import LoginThrottleStore

    loaded = config()
    return LoginThrottleStore(read_model().redis, loaded.store.prefix, loaded.auth.login_throttle)


def cookie_signer() -> CookieSigner:
    """Signs session cookies with the secret Streamlit signs its own cookies with (launch.py requires one)."""
    from streamlit.web.server.server_util import get_cookie_secret

    from hulk_ops.dashboard.sessions import CookieSigner

    return CookieSigner(get_cookie_secret())
