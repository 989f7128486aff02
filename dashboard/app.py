"""Streamlit entry point: the router. Each page is one view module's `render()`."""

from __future__ import annotations

import streamlit as st

from dashboard.views import overview

st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    st.Page(overview.render, title="Overview", icon=":material/monitor_heart:", url_path="overview", default=True),
]

st.navigation(PAGES).run()
