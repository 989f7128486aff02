"""Streamlit entry point: the login gate (when auth is configured), then the router. Each page is one view
module's `render()` (see hulk_ops/dashboard/nav.py), traced per render."""

from __future__ import annotations

import streamlit as st

from hulk_ops.dashboard import auth, nav
from hulk_ops.observe import heap

heap.start("dashboard")  # once per process, only with HULK_OPS_HEAP_STATS set (bench/soak.py)
st.set_page_config(page_title="hulk-ops", page_icon=":material/monitor_heart:", layout="wide")

SECTIONS = {
    "Operate": ["overview", "incidents", "target"],
    "Review": ["latency", "cost", "capacity", "radar"],
    "Act": ["actions", "audit", "silences"],
    "Self": ["health"],
}
PAGES = {section: [nav.page(key) for key in keys] for section, keys in SECTIONS.items()}

# the router first (a deep link like /actions survives signing in), hidden until someone is signed in
router = st.navigation(PAGES, position="sidebar" if auth.ready() else "hidden")
auth.gate(router)  # stops the script with the sign-in page until someone is signed in
router.run()
