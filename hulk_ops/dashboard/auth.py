"""The dashboard's login gate: every page is behind it when `auth:` is configured.

OIDC (`auth.oidc` in the config and `[auth]` in `.streamlit/secrets.toml`): Streamlit's `st.login`
signs the person in; roles come from the configured claim. Otherwise local users (`auth.users`)
sign in with name and password. The Principal is kept server-side in the session; the guard decides
on every action regardless of what the UI showed.
"""

from __future__ import annotations

import streamlit as st

from hulk_ops.actions.identity import login, oidc_principal
from hulk_ops.actions.model import Principal
from hulk_ops.dashboard import context

SESSION_KEY = "principal"


def principal() -> Principal | None:
    """The signed-in person (None when the dashboard has no auth configured)."""
    value = st.session_state.get(SESSION_KEY)
    return value if isinstance(value, Principal) else None


def ready() -> bool:
    """Whether pages may render now: no auth configured, or someone is signed in."""
    auth = context.config().auth
    if not auth.enabled:
        return True
    if auth.oidc is not None:
        return bool(st.user.is_logged_in)
    return principal() is not None


def gate() -> Principal | None:
    """Stop the script with a login page unless someone is signed in (or no auth is configured)."""
    auth = context.config().auth
    if not auth.enabled:
        return None
    if auth.oidc is not None:
        return _oidc_gate()
    current = principal()
    if current is None:
        _login_page()
        st.stop()
    _sidebar(current)
    return current


def _oidc_gate() -> Principal:
    oidc = context.config().auth.oidc
    assert oidc is not None
    if not st.user.is_logged_in:
        st.title(context.config().dashboard.title)
        st.write("Sign in to see the dashboard.")
        if st.button("Sign in", type="primary"):
            try:
                st.login(oidc.provider) if oidc.provider else st.login()
            except Exception as exc:  # Streamlit raises its own auth errors for a missing [auth] section
                st.error(f"Sign-in is not configured: {exc}. Add [auth] to .streamlit/secrets.toml.", icon="🚨")
        st.stop()
    current = oidc_principal(oidc, st.user.to_dict())
    st.session_state[SESSION_KEY] = current
    _sidebar(current)
    return current


def _login_page() -> None:
    auth = context.config().auth
    st.title(context.config().dashboard.title)
    st.subheader("Sign in")
    if auth.login_hint:
        st.info(auth.login_hint, icon="🔑")
    with st.form("login"):
        name = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        found = login(auth, name, password)
        if found is None:
            st.error("Unknown user or wrong password.")
            return
        st.session_state[SESSION_KEY] = found
        st.rerun()


def _sidebar(current: Principal) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{current.name}** ({', '.join(current.roles) or 'no role'})")
        if st.button("Sign out", key="sign_out"):
            st.session_state.pop(SESSION_KEY, None)
            if current.via == "dashboard" and context.config().auth.oidc is not None:
                st.logout()
            st.rerun()
