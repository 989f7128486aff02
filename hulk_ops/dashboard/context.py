"""Shared, cached resources of the Streamlit app: the config (validated once) and the read model."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from hulk_ops.core.config import Config, load_config
from hulk_ops.dashboard.readmodel import ReadModel

_preloaded: Config | None = None  # validated by `hulk-ops dashboard` before the server started (serve.py)


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
