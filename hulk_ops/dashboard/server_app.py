"""What `hulk-ops dashboard` serves: Streamlit's app (app.py) with the session cookie routes added through
Streamlit's own `st.App(routes=...)` (session_routes.py). `streamlit run` finds `app` here and serves it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hulk_ops.dashboard import session_routes

app = st.App(Path(__file__).with_name("app.py"), routes=session_routes.routes())
