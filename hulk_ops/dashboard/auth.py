"""The dashboard's login gate: every page is behind it when `auth:` is configured.

OIDC (`auth.oidc` in the config and `[auth]` in `.streamlit/secrets.toml`): Streamlit's `st.login`
signs the person in; roles come from the configured claim. Otherwise local users (`auth.users`)
sign in with name and password into a server-side session (sessions.py) behind a signed, HttpOnly
cookie, so a reload or a new tab stays signed in; every page run checks the session in the store,
so an expired or revoked one signs the person out. Wrong passwords are throttled per user name and
per client address before any password is hashed. The guard decides on every action regardless of
what the UI showed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import redis
import streamlit as st

from hulk_ops.actions.identity import LoginBusy, login, oidc_principal
from hulk_ops.actions.model import Principal
from hulk_ops.dashboard import context
from hulk_ops.dashboard.sessions import COOKIE, END_PATH, START_PATH, Lockout

SESSION_KEY = "principal"
SESSION_ID_KEY = "session_id"  # the store session this Streamlit session is signed in through
log = logging.getLogger("hulk_ops.dashboard")


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
    return _local_principal() is not None


def gate(page: Any = None) -> Principal | None:
    """Stop the script with a login page unless someone is signed in (or no auth is configured). `page` is
    the router's page: signing in returns to it with the same query."""
    auth = context.config().auth
    if not auth.enabled:
        return None
    if auth.oidc is not None:
        return _oidc_gate()
    current = _local_principal()
    if current is None:
        form = st.empty()
        with form.container():
            signed_in = _login_page(page)
        if signed_in is not None:  # the browser is on its way to the cookie route (a rerun would drop that)
            form.info(f"Signed in as {signed_in.name}: opening the page...", icon="🔑")
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


def _cookie_session() -> str | None:
    """The session id in this browser's verified cookie (sent with the WebSocket that opened this session)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no browser connection (a headless test run)
        return None
    return context.cookie_signer().unsign(value) if isinstance(value, str) else None


def _local_principal() -> Principal | None:
    """Who is signed in through a store session: this Streamlit session's own, or the cookie's. A principal
    without a store session (put in the state by a test) stands as it is."""
    current = principal()
    known = st.session_state.get(SESSION_ID_KEY)
    if current is not None and known is None:
        return current
    session_id = known or _cookie_session()
    if session_id is None:
        return None
    try:
        name = context.session_store().user(session_id)
    except redis.RedisError:
        return current  # the store is down: a session already checked stays, a new one cannot start
    user = context.config().auth.user(name) if name else None
    if user is None:  # expired, revoked, or the user was removed from the config
        st.session_state.pop(SESSION_KEY, None)
        st.session_state.pop(SESSION_ID_KEY, None)
        return None
    found = Principal(name=user.name, roles=(user.role,), via="dashboard")
    st.session_state[SESSION_KEY], st.session_state[SESSION_ID_KEY] = found, session_id
    return found


def _here(page: Any) -> str:
    """This page's path with its query, to come back to after sign-in ("/incidents?incident=abc")."""
    path = str(getattr(page, "url_path", "") or "")
    query = [(key, value) for key in st.query_params for value in st.query_params.get_all(key)]
    return f"/{path}" + (f"?{urlencode(query)}" if query else "")


def _navigate(path: str) -> None:
    """Send the browser to a path of this server. Streamlit's own st.login/st.logout redirect through this
    message; a script has no other way to make the browser load a URL that sets a cookie."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from hulk_ops.dashboard.session_routes import base_path

    ctx = get_script_run_ctx()
    if ctx is None:
        return
    msg = ForwardMsg()
    msg.auth_redirect.url = base_path() + path
    ctx.enqueue(msg)


def _client_address() -> str:
    try:
        address = st.context.ip_address  # Streamlit answers None for a local connection
    except Exception:  # no browser connection (a headless test run)
        address = None
    return address if isinstance(address, str) and address else "127.0.0.1"


def _login_page(page: Any) -> Principal | None:
    auth = context.config().auth
    st.title(context.config().dashboard.title)
    st.subheader("Sign in")
    if auth.login_hint:
        st.info(auth.login_hint, icon="🔑")
    with st.form("login"):
        name = st.text_input("User", key="login_user", max_chars=128)
        password = st.text_input("Password", type="password", key="login_password", max_chars=1024)
        submitted = st.form_submit_button("Sign in", type="primary")
    return _sign_in(name, password, page) if submitted else None


def _sign_in(name: str, password: str, page: Any) -> Principal | None:
    """The principal signed in by this form, with the browser on its way to the cookie route; or None with
    the reason shown."""
    auth = context.config().auth
    address = _client_address()
    try:
        throttle = context.login_throttle()
        lock = throttle.locked(name, address)
    except redis.RedisError:
        st.error("Sign-in needs the store, which is unreachable: try again shortly.")
        return None
    if lock is not None:  # refused before any password is hashed
        st.error(lock.message(), icon="🔒")
        return None
    try:
        found = login(auth, name, password)
    except LoginBusy as exc:
        st.error(str(exc))
        return None
    if found is None:
        try:
            started = throttle.failed(name, address)
        except redis.RedisError:
            started = []
        for lock in started:
            _record_lockout(lock, name, address, auth.login_throttle.failures, auth.login_throttle.window_s)
        st.error(started[0].message() if started else "Unknown user or wrong password.")
        return None
    try:
        session_id, grant = context.session_store().create(found.name)
    except redis.RedisError:
        st.error("Sign-in needs the store, which is unreachable: try again shortly.")
        return None
    st.session_state[SESSION_KEY], st.session_state[SESSION_ID_KEY] = found, session_id
    _navigate(f"{START_PATH}?{urlencode({'grant': grant, 'next': _here(page)})}")  # the cookie, then back here
    return found


def _record_lockout(lock: Lockout, name: str, address: str, failures: int, window_s: float) -> None:
    """Log a new lockout and append it to the audit log (when one is configured)."""
    subject = f"user {name[:128]!r}" if lock.why == "user" else f"address {address}"
    until = datetime.fromtimestamp(lock.until, UTC)
    log.warning("dashboard sign-in locked for %s until %s after %d failed attempts within %.0f s",
                subject, until.isoformat(timespec="seconds"), failures, window_s)
    audit = context.config().audit
    if not audit.url:
        return
    from hulk_ops.actions.audit import AuditRecord, AuditUnavailable, PostgresAuditLog

    record = AuditRecord(
        request_id=str(uuid.uuid4()), username=name[:128] if lock.why == "user" else "-", action="login_lockout",
        target="dashboard", object=subject, via="dashboard", outcome="refused",
        params={"subject": lock.why, "user": name[:128], "address": address, "failures": failures,
                "window_s": window_s, "until": until.isoformat(timespec="seconds")},
        error=lock.message(time.time()))
    try:
        asyncio.run(PostgresAuditLog(audit).append(record))
    except AuditUnavailable as exc:
        log.error("dashboard sign-in lockout not audited: %s", exc)


def _sign_out(current: Principal) -> None:
    session_id = st.session_state.pop(SESSION_ID_KEY, None)
    st.session_state.pop(SESSION_KEY, None)
    if session_id is not None:
        try:
            context.session_store().revoke(session_id)
        except redis.RedisError as exc:
            log.error("dashboard sign-out: the session could not be revoked in the store: %s", type(exc).__name__)
        _navigate(END_PATH)  # clears the cookie, then the start page; no rerun, which would drop this message
        st.caption("Signed out.")
        st.stop()
    if current.via == "dashboard" and context.config().auth.oidc is not None:
        st.logout()
    st.rerun()


def _sidebar(current: Principal) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{current.name}** ({', '.join(current.roles) or 'no role'})")
        if st.button("Sign out", key="sign_out"):
            _sign_out(current)
