"""A visitor who is not signed in opens every page's URL directly in Chromium and sees only the login form:
no page content, no navigation, nothing from the store (a seeded canary target). After signing in, the
deep link's page shows the canary (the control)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from hulk_ops.actions.identity import hash_secret
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.nav import PAGES
from tests.seed import result, seed

CANARY = "gate-canary-target"
TITLE = "hulk-ops gate test"
QUERY = {"target": f"?target={quote(CANARY)}", "incidents": f"?incident={quote(CANARY)}"}


@pytest.fixture
def gated_url(write_config, dashboard_url) -> str:
    path = write_config([{"name": CANARY, "kind": "redis", "url": "redis://127.0.0.1:1/0"}],
                        dashboard={"title": TITLE},
                        auth={"users": [{"name": "otto", "role": "operator",
                                         "password_hash": hash_secret("otto-password-1")}]})
    rows = [result(CANARY, "redis", "down", time.time(), error="canary-error-text")]
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        pool.submit(seed, load_config(path), rows).result()
    return dashboard_url(path)


def login_form_only(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    page.wait_for_timeout(1_500)  # anything the script would render after the gate has had time to arrive
    body = page.inner_text("body")
    assert TITLE in body and "User" in body and "Password" in body
    assert CANARY not in body and "canary-error-text" not in body, body
    assert CANARY not in page.content()  # not even hidden in the DOM
    if title != TITLE:
        assert title not in body, body
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # no navigation to the other pages
    assert page.locator('[data-testid="stMetric"], [data-testid="stDataFrame"], .js-plotly-plot').count() == 0


def test_every_page_url_shows_only_the_login_form(gated_url, page) -> None:
    for key, (title, _icon, _module) in PAGES.items():
        login_form_only(page, f"{gated_url}/{key}{QUERY.get(key, '')}", title)
    login_form_only(page, gated_url, PAGES["overview"][0])


def test_signing_in_on_a_deep_link_opens_that_page(gated_url, page) -> None:
    page.goto(f"{gated_url}/target{QUERY['target']}")
    page.get_by_role("textbox", name="User").fill("otto")
    page.get_by_role("textbox", name="Password").fill("otto-password-1")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("canary-error-text").first.wait_for(timeout=60_000)
    assert CANARY in page.inner_text("body")
