"""The pages and how to link to them: every target name on every page leads to its detail page.

`page(key)` builds the `st.Page` the router registers (app.py) and that `st.page_link` points at
(a page link matches its page by url_path). `target_url(name)` is the same place as a relative
URL, for link columns in tables.
"""

from __future__ import annotations

import functools
import importlib
from urllib.parse import quote

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

# url_path -> (title, icon, module with render())
PAGES: dict[str, tuple[str, str, str]] = {
    "overview": ("Overview", ":material/monitor_heart:", "hulk_ops.dashboard.views.overview"),
    "incidents": ("Incidents", ":material/crisis_alert:", "hulk_ops.dashboard.views.incidents"),
    "latency": ("Latency & SLOs", ":material/speed:", "hulk_ops.dashboard.views.latency"),
    "cost": ("Cost", ":material/payments:", "hulk_ops.dashboard.views.cost"),
    "capacity": ("Capacity", ":material/storage:", "hulk_ops.dashboard.views.capacity"),
    "radar": ("Technology radar", ":material/radar:", "hulk_ops.dashboard.views.radar"),
    "target": ("Target detail", ":material/target:", "hulk_ops.dashboard.views.target"),
    "actions": ("Actions", ":material/bolt:", "hulk_ops.dashboard.views.actions"),
    "audit": ("Audit", ":material/receipt_long:", "hulk_ops.dashboard.views.audit"),
    "silences": ("Silences", ":material/notifications_off:", "hulk_ops.dashboard.views.silences"),
    "health": ("hulk-ops health", ":material/health_and_safety:", "hulk_ops.dashboard.views.health"),
}
DEFAULT = "overview"


def page(key: str) -> st.Page:
    from hulk_ops.dashboard.traced import page as traced

    title, icon, module = PAGES[key]
    render = traced(importlib.import_module(module).render, key)  # a span per render when tracing is on
    return st.Page(render, title=title, icon=icon, url_path=key, default=key == DEFAULT)


@functools.lru_cache(maxsize=16_384)
def target_url(name: str) -> str:
    """Relative URL of a target's detail page (resolves against the app's base path)."""
    return f"target?target={quote(name, safe='')}"


def incident_url(root: str) -> str:
    return f"incidents?incident={quote(root, safe='')}"


def link_target(name: str, label: str | None = None, container: DeltaGenerator | None = None) -> None:
    (container or st).page_link(page("target"), label=label or name, icon=":material/open_in_new:",
                                query_params={"target": name})


def link_incident(root: str, label: str, container: DeltaGenerator | None = None) -> None:
    (container or st).page_link(page("incidents"), label=label, icon=":material/crisis_alert:",
                                query_params={"incident": root})
