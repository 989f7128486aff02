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
from pathlib import Path

import streamlit as st

from hulk_ops.core.config import Config, ConfigError, load_config
from hulk_ops.dashboard.readmodel import ReadModel

_preloaded: Config | None = None  # validated by `hulk-ops dashboard` before the server started (serve.py)
_reload_lock = threading.Lock()
log = logging.getLogger("hulk_ops.dashboard")


def preload(loaded: Config | None) -> None:
    """Hand over the config the CLI already loaded and validated, so the server does not parse it again."""
    global _preloaded
    _preloaded = loaded


@st.cache_resource(show_spinner=False)
def config() -> Config:
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
        config.clear()
        read_model.clear()
    log.warning("config reloaded from %s: %d targets", path, len(new.targets))
    return True
