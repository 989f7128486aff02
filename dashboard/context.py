"""Shared, cached resources of the Streamlit app: the config (validated once) and the read model."""

from __future__ import annotations

import os

import streamlit as st

from dashboard.readmodel import ReadModel
from hulk_ops.config import Config, load_config


@st.cache_resource(show_spinner=False)
def config() -> Config:
    path = os.environ.get("HULK_OPS_CONFIG")
    if not path:
        raise RuntimeError("HULK_OPS_CONFIG is not set: start the dashboard with `hulk-ops dashboard --config FILE`")
    return load_config(path)


@st.cache_resource(show_spinner=False)
def read_model() -> ReadModel:
    return ReadModel(config())
