"""Without a signed-in principal every page of the real app (hulk_ops/dashboard/app.py and its router) shows the login
form and nothing else: no page content, nothing read from the store (a seeded canary target never appears)."""

from __future__ import annotations

import time

import pytest

from hulk_ops.actions.identity import hash_secret
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.nav import DEFAULT, PAGES
from tests.seed import result, seed

pytest_plugins = ["tests.fixtures_views"]
CANARY = "gate-canary-target"
TITLE = "hulk-ops gate test"
QUERY = {"target": {"target": CANARY}, "incidents": {"incident": CANARY}}


@pytest.fixture
def gated_config(write_config):
    path = write_config([{"name": CANARY, "kind": "redis", "url": "redis://127.0.0.1:1/0"}],
                        dashboard={"title": TITLE},
                        auth={"users": [{"name": "otto", "role": "operator",
                                         "password_hash": hash_secret("otto-password-1")}]})
    seed(load_config(path), [result(CANARY, "redis", "down", time.time(), error="canary-error-text",
                                    metrics={"used_memory": 1234567})])
    return path


def everything(at) -> list[tuple[str, str]]:
    """(element type, its whole protobuf as text) for every element in the main area and the sidebar."""
    out = []
    for root in (at.main, at.sidebar):
        for node in root:
            proto = getattr(node, "proto", None)
            out.append((type(node).__name__, str(proto) if proto is not None else ""))
    return out


@pytest.mark.parametrize("key", list(PAGES))
def test_every_page_without_a_principal_shows_only_the_login_form(gated_config, open_page, key) -> None:
    at = open_page(gated_config, "" if key == DEFAULT else key, query=QUERY.get(key))  # the default page's url is ""
    assert "principal" not in at.session_state
    assert [t.value for t in at.title] == [TITLE]
    assert [t.label for t in at.text_input] == ["User", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    shown = everything(at)
    kinds = {kind for kind, _ in shown}
    assert kinds == {"SpecialBlock", "Block", "Title", "Subheader", "TextInput", "Button"}, kinds  # Block: the form
    page_title = PAGES[key][0]
    for kind, text in shown:
        assert CANARY not in text and "canary-error-text" not in text, (kind, text)
        assert page_title not in text or page_title == TITLE, (kind, text)


def test_signed_in_the_same_page_shows_the_canary(gated_config, open_page) -> None:
    """The control for the test above: the canary is there to be seen once someone is signed in."""
    from hulk_ops.actions.model import Principal

    at = open_page(gated_config, "target", query=QUERY["target"],
                   state={"principal": Principal(name="otto", roles=("operator",), via="dashboard")})
    assert any(CANARY in text for _kind, text in everything(at))
    assert any("canary-error-text" in text for _kind, text in everything(at))
