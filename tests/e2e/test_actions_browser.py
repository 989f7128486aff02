"""A purge walked in Debian's Chromium on a running `hulk-ops dashboard`: sign in, dry-run, read the
preview in the dialog, type the stream's name, purge; the stream is really empty and it is audited."""

from __future__ import annotations

import pytest

from hulk_ops.actions.audit import PostgresAuditLog
from hulk_ops.actions.identity import hash_secret
from tests.e2e.conftest import screenshot
from tests.fixtures_actions import run_sync

pytest_plugins = ["tests.fixtures_actions"]
TIMEOUT = 60_000


@pytest.fixture
def actions_dashboard(write_config, nats_server, audit_schema, dashboard_url, stream):
    run_sync(stream.create({"worker": None}))
    run_sync(stream.publish(31))
    path = write_config(
        [{"name": "nats-dev", "kind": "nats", "url": nats_server.url}],
        audit=audit_schema.model_dump(),
        auth={"login_hint": "Demo users: operator / operator-demo",
              "users": [{"name": "operator", "role": "operator", "password_hash": hash_secret("operator-demo")}]},
    )
    return dashboard_url(path)


def test_purge_from_dry_run_to_typed_confirmation(actions_dashboard, page, stream, audit_schema) -> None:
    page.goto(f"{actions_dashboard}/actions")
    page.get_by_text("Demo users: operator / operator-demo").wait_for(timeout=TIMEOUT)
    page.get_by_role("textbox", name="User").fill("operator")
    page.get_by_role("textbox", name="Password").fill("operator-demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=TIMEOUT)

    stream_box = page.get_by_role("textbox", name="Stream", exact=True)
    stream_box.fill(stream.name)
    stream_box.press("Enter")
    page.get_by_role("button", name="Dry-run").click()

    dialog = page.get_by_role("dialog")
    dialog.get_by_text("purge 31 of 31 message(s)").wait_for(timeout=TIMEOUT)
    dialog.get_by_text("consumer worker loses up to 31").wait_for(timeout=TIMEOUT)
    purge = dialog.get_by_role("button", name="Purge stream")
    assert purge.is_disabled()  # nothing typed yet
    assert run_sync(stream.state())[0] == 31  # the dry-run changed nothing
    screenshot(page, "actions-confirm")

    confirm = dialog.get_by_role("textbox")
    confirm.fill(stream.name)
    confirm.press("Enter")
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('[role=dialog] button')]"
        ".find(e => e.innerText.includes('Purge stream')); return b && !b.disabled; }", timeout=TIMEOUT)
    purge.click()
    page.get_by_text("Done.").wait_for(timeout=TIMEOUT)
    assert page.get_by_role("dialog").count() == 0

    messages, _size, pending = run_sync(stream.state())
    assert (messages, pending["worker"]) == (0, 0)
    rows = run_sync(PostgresAuditLog(audit_schema).records())
    assert [(r.outcome, r.username, r.via) for r in rows] == [
        ("succeeded", "operator", "dashboard"), ("started", "operator", "dashboard"),
        ("dry_run", "operator", "dashboard")]
    assert rows[0].after["purged"] == 31
