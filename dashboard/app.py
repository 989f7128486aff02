"""Streamlit entry point: the login gate (when auth is configured), then the router. Each page is one
view module's `render()`."""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from dashboard.views import actions, audit, overview

st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    st.Page(overview.render, title="Overview", icon=":material/monitor_heart:", url_path="overview", default=True),
    st.Page(actions.render, title="Actions", icon=":material/bolt:", url_path="actions"),
    st.Page(audit.render, title="Audit", icon=":material/receipt_long:", url_path="audit"),
]

# the router first (a deep link like /actions survives signing in), hidden until someone is signed in
page = st.navigation(PAGES, position="sidebar" if auth.ready() else "hidden")
auth.gate()  # stops the script with the sign-in page until someone is signed in
page.run()
