"""Who is signed in, for the few writes the dashboard does itself (silences).

The login gate (`hulk_ops/dashboard/auth.py`) keeps the signed-in person in
`st.session_state["principal"]`: an object with `.name` and `.role` ("viewer" | "operator" |
"admin"). This function reads that and nothing else; when no auth is configured, nobody is signed in
and `current()` is None, so dashboard silences are refused (silences from the config still apply).
Tests put such an object in the session state.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from hulk_ops.dashboard.silence_writer import Operator

SESSION_KEY = "principal"


def current() -> Operator | None:
    who: Any = st.session_state.get(SESSION_KEY)
    name = getattr(who, "name", None)
    if not name:
        return None
    role = getattr(who, "role", None)
    return Operator(str(name), str(role) if role else None)
