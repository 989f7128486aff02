"""Local users' sessions and the sign-in throttle, walked in Debian's Chromium on a running `hulk-ops dashboard`:
a reload and a new browser holding the cookie stay signed in, the cookie is HttpOnly and SameSite=Strict, a deep
link survives signing in, signing out (or idling past `auth.session_idle_s`) ends the session in the store, and
five wrong passwords lock the user name out with an audit row."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from hulk_ops.actions.audit import AuditFilter, PostgresAuditLog
from hulk_ops.actions.identity import hash_secret
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.sessions import COOKIE
from tests.fixtures_actions import run_sync
from tests.seed import result, seed

pytest_plugins = ["tests.fixtures_actions"]
TIMEOUT = 60_000
CANARY = "session-canary-target"
PASSWORD = "otto-password-1"


def start(write_config, dashboard_url, **auth):
    path = write_config([{"name": CANARY, "kind": "redis", "url": "redis://127.0.0.1:1/0"}],
                        **({"audit": auth.pop("audit")} if "audit" in auth else {}),
                        auth={"users": [{"name": "otto", "role": "operator", "password_hash": hash_secret(PASSWORD)}],
                              **auth})
    rows = [result(CANARY, "redis", "down", time.time(), error="canary-error-text")]
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        pool.submit(seed, load_config(path), rows).result()
    return dashboard_url(path)


def sign_in(page, password: str = PASSWORD) -> None:
    page.get_by_role("textbox", name="User").fill("otto")
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page) -> None:
    page.get_by_text("Signed in as").wait_for(timeout=TIMEOUT)


def login_form(page) -> None:
    page.get_by_role("button", name="Sign in").wait_for(timeout=TIMEOUT)
    assert "Signed in as" not in page.inner_text("body")


def session_cookie(context, timeout_s: float = 30.0) -> dict:
    """The session cookie, once the sign-in's redirect through the cookie route has set it."""
    deadline = time.monotonic() + timeout_s
    while not (found := [c for c in context.cookies() if c["name"] == COOKIE]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found) == 1, context.cookies()
    return found[0]


@pytest.fixture
def url(write_config, dashboard_url) -> str:
    return start(write_config, dashboard_url)


def test_reload_new_browser_and_sign_out(url, browser, page) -> None:
    page.goto(url)
    sign_in(page)
    signed_in(page)
    cookie = session_cookie(page.context)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find(COOKIE) == -1  # not readable by scripts

    page.reload()
    signed_in(page)

    other = browser.new_context()
    try:
        other.add_cookies([cookie])
        tab = other.new_page()
        tab.goto(f"{url}/target?target={quote(CANARY)}")
        tab.get_by_text("canary-error-text").first.wait_for(timeout=TIMEOUT)
        signed_in(tab)

        same_browser = page.context.new_page()  # a second tab of the signed-in browser
        same_browser.goto(url)
        signed_in(same_browser)

        page.get_by_role("button", name="Sign out").click()
        login_form(page)
        # the second tab's next page run (no reload: the same Streamlit session) finds the session gone
        same_browser.get_by_role("link", name="Incidents").click()
        login_form(same_browser)
        assert not [c for c in page.context.cookies() if c["name"] == COOKIE]

        tab.reload()  # the old cookie, revoked in the store: the other browser is signed out too
        login_form(tab)
        assert "canary-error-text" not in tab.inner_text("body")
    finally:
        other.close()


def test_a_deep_link_leads_back_to_itself_after_sign_in(url, page) -> None:
    page.goto(f"{url}/incidents?incident={quote(CANARY)}")
    login_form(page)
    sign_in(page)
    session_cookie(page.context)  # set by the cookie route, which then redirects back to the deep link
    page.wait_for_url(f"**/incidents?incident={quote(CANARY)}", timeout=TIMEOUT)
    signed_in(page)
    page.reload()
    signed_in(page)
    assert page.url.endswith(f"/incidents?incident={quote(CANARY)}")


def test_an_idle_session_expires(write_config, dashboard_url, page) -> None:
    url = start(write_config, dashboard_url, session_idle_s=3)
    page.goto(url)
    sign_in(page)
    signed_in(page)
    session_cookie(page.context)
    page.reload()
    signed_in(page)  # within the idle time
    page.wait_for_timeout(4_500)
    page.reload()
    login_form(page)


def test_five_wrong_passwords_lock_the_user_out(write_config, dashboard_url, audit_schema, page) -> None:
    url = start(write_config, dashboard_url, audit=audit_schema.model_dump())
    for attempt in range(4):
        page.goto(url)  # a fresh page each time: the answer seen is this attempt's, not the one before
        sign_in(page, f"wrong-{attempt}")
        page.get_by_text("Unknown user or wrong password.").wait_for(timeout=TIMEOUT)
    page.goto(url)
    sign_in(page, "wrong-4")
    page.get_by_text("Too many failed sign-ins").first.wait_for(timeout=TIMEOUT)
    page.goto(url)
    sign_in(page)  # the right password is refused too while locked
    page.get_by_text("Too many failed sign-ins").first.wait_for(timeout=TIMEOUT)
    body = page.inner_text("body")
    assert "Try again in" in body and "Signed in as" not in body

    rows = run_sync(PostgresAuditLog(audit_schema).records(AuditFilter(action="login_lockout")))
    subjects = sorted(r.params["subject"] for r in rows)
    assert subjects == ["address", "user"], [r.params for r in rows]
    user_row = next(r for r in rows if r.params["subject"] == "user")
    assert (user_row.username, user_row.outcome, user_row.via) == ("otto", "refused", "dashboard")
    assert user_row.params["failures"] == 5 and PASSWORD not in str(user_row.params)
