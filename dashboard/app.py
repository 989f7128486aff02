"""Streamlit entry point: the login gate (when auth is configured), then the router. Each page is one
view module's `render()`, traced per render."""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from dashboard.traced import page
from dashboard.views import actions, audit, health, overview, silences

st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    st.Page(page(overview.render, "overview"), title="Overview", icon=":material/monitor_heart:",
            url_path="overview", default=True),
    st.Page(page(actions.render, "actions"), title="Actions", icon=":material/bolt:", url_path="actions"),
    st.Page(page(audit.render, "audit"), title="Audit", icon=":material/receipt_long:", url_path="audit"),
    st.Page(page(silences.render, "silences"), title="Silences", icon=":material/notifications_off:",
            url_path="silences"),
    st.Page(page(health.render, "health"), title="hulk-ops health", icon=":material/health_and_safety:",
            url_path="health"),
]

# the router first (a deep link like /actions survives signing in), hidden until someone is signed in
router = st.navigation(PAGES, position="sidebar" if auth.ready() else "hidden")
auth.gate()  # stops the script with the sign-in page until someone is signed in
router.run()
