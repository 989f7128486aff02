"""Streamlit entry point: the router. Each page is one view module's `render()` (see dashboard/nav.py)."""

from __future__ import annotations

import streamlit as st

from dashboard import nav

st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    nav.page("overview"),
    nav.page("incidents"),
    nav.page("latency"),
    nav.page("cost"),
    nav.page("capacity"),
    nav.page("radar"),
    nav.page("target"),
]

st.navigation(PAGES).run()
