"""A span per dashboard page render (`dashboard.page`), when tracing is configured (`telemetry:`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import streamlit as st

from hulk_ops.dashboard import context
from hulk_ops.observe import tracing


@st.cache_resource(show_spinner=False)
def _configured() -> bool:
    config = context.config()
    tracing.configure(config.telemetry, config.secrets(), component="dashboard")
    return True


def page(render: Callable[[], None], name: str) -> Callable[[], None]:
    """Wrap a page's render() in a span named after the page (st.stop/rerun are not failures)."""

    @functools.wraps(render)
    def traced() -> None:
        _configured()
        with tracing.span("dashboard.page", page=name):
            render()

    return traced
