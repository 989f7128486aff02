"""Streamlit entry point: the router. Each page is one view module's `render()`, traced per render."""

from __future__ import annotations

import streamlit as st

from dashboard.traced import page
from dashboard.views import health, overview, silences

st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    st.Page(page(overview.render, "overview"), title="Overview", icon=":material/monitor_heart:",
            url_path="overview", default=True),
    st.Page(page(health.render, "health"), title="hulk-ops health", icon=":material/health_and_safety:",
            url_path="health"),
    st.Page(page(silences.render, "silences"), title="Silences", icon=":material/notifications_off:",
            url_path="silences"),
]

st.navigation(PAGES).run()
