"""The Actions and Audit pages and the login gate, run headless by AppTest on real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hulk_ops.actions.identity import hash_secret
from hulk_ops.actions.model import Principal

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_k8s"]
APP = str(Path(__file__).resolve().parents[2] / "hulk_ops" / "dashboard" / "app.py")
OPERATOR = Principal(name="otto", roles=("operator",), via="dashboard")
ADMIN = Principal(name="ada", roles=("admin",), via="dashboard")
VIEWER = Principal(name="vera", roles=("viewer",), via="dashboard")


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def page_config(write_config, nats_server, audit_schema, monkeypatch):
    path = write_config(
        [
            {"name": "nats-dev", "kind": "nats", "url": nats_server.url},
            {"name": "nats-prod", "kind": "nats", "url": nats_server.url, "labels": {"env": "production"}},
            {"name": "nats-frozen", "kind": "nats", "url": nats_server.url, "read_only": True},
        ],
        audit=audit_schema.model_dump(),
        auth={"login_hint": "Demo users: otto / otto-password-1",
              "users": [{"name": "otto", "role": "operator", "password_hash": hash_secret("otto-password-1")}]},
    )
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    return path


def actions_page() -> None:
    from hulk_ops.dashboard.views import actions

    actions.render()


def overview_page() -> None:
    from hulk_ops.dashboard.views import overview

    overview.render()


def audit_page() -> None:
    from hulk_ops.dashboard.views import audit

    audit.render()


def run_page(page, who: Principal | None) -> AppTest:
    at = AppTest.from_function(page, default_timeout=60)
    if who is not None:
        at.session_state["principal"] = who
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [h.value for h in at.subheader]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(parts)


def test_viewer_gets_no_action_controls(page_config) -> None:
    at = run_page(actions_page, VIEWER)
    assert "viewer" in texts(at)
    assert not [b for b in at.button if b.label == "Dry-run"]
    assert not at.text_input


def test_operator_purges_through_dry_run_and_typed_confirmation(page_config, stream) -> None:
    asyncio.run(stream.create({"worker": None}))
    asyncio.run(stream.publish(23))
    at = run_page(actions_page, OPERATOR)
    targets = at.selectbox(key="purge_stream_target")
    assert targets.options == ["nats-dev", "nats-prod (production)"]  # read-only nats-frozen is not offered

    at.text_input(key="purge_stream_name").input(stream.name)
    at.run()
    at.button(key="purge_dry").click()
    at.run()
    assert "purge 23 of 23 message(s)" in texts(at)
    assert "consumer worker loses up to 23" in texts(at)
    assert [m.value for m in at.metric][:1] == ["23"]
    assert at.button(key="confirm_go").disabled  # nothing typed yet

    at.text_input(key="confirm_text").input("not-the-name")
    at.run()
    assert at.button(key="confirm_go").disabled
    at.text_input(key="confirm_text").input(stream.name)
    at.run()
    assert not at.button(key="confirm_go").disabled
    at.button(key="confirm_go").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Done." in texts(at)
    messages, _size, pending = asyncio.run(stream.state())
    assert (messages, pending["worker"]) == (0, 0)

    overview = run_page(overview_page, OPERATOR)  # the action is on the timeline of state changes
    changes = list(overview.dataframe[-1].value["change"])
    assert f"purge_stream {stream.name}: succeeded by otto" in changes


def test_production_request_waits_and_an_admin_approves_it(page_config, stream) -> None:
    asyncio.run(stream.create())
    asyncio.run(stream.publish(4))
    at = run_page(actions_page, OPERATOR)
    at.selectbox(key="purge_stream_target").select_index(1)
    at.text_input(key="purge_stream_name").input(stream.name)
    at.run()
    at.button(key="purge_dry").click()
    at.run()
    at.text_input(key="confirm_text").input(stream.name)
    at.run()
    at.button(key="confirm_go").click()
    at.run()
    assert "Waiting for approval." in texts(at)
    assert asyncio.run(stream.state())[0] == 4

    mine = run_page(actions_page, OPERATOR)
    assert "Waiting for approval (1)" in texts(mine)
    assert not [b for b in mine.button if b.label == "Approve"]  # operators do not approve

    admin = run_page(actions_page, ADMIN)
    assert "asked by otto" in texts(admin)
    approve = [b for b in admin.button if b.label == "Approve"]
    assert len(approve) == 1
    approve[0].click()
    admin.run()
    assert "Done." in texts(admin) and "approved" not in [b.label for b in admin.button]
    assert asyncio.run(stream.state())[0] == 0


def test_audit_page_filters_and_exports_csv(page_config, stream) -> None:
    asyncio.run(stream.create())
    at = run_page(actions_page, OPERATOR)
    at.text_input(key="purge_stream_name").input(stream.name)
    at.run()
    at.button(key="purge_dry").click()
    at.run()
    at.button(key="confirm_cancel").click()
    at.run()

    audit = run_page(audit_page, OPERATOR)
    frame = audit.dataframe[0].value
    assert list(frame["outcome"]) == ["dry_run"]
    assert list(frame["user"]) == ["otto"] and list(frame["object"]) == [stream.name]
    assert audit.get("download_button")  # CSV export offered
    audit.selectbox(key="audit_outcome").select("succeeded")
    audit.run()
    assert "No audit rows match" in texts(audit)


def test_login_gate_guards_every_page(page_config) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Demo users: otto / otto-password-1" in texts(at)
    assert "Overview" not in [t.value for t in at.title]  # nothing behind the gate rendered
    at.text_input(key="login_user").input("otto")
    at.text_input(key="login_password").input("wrong")
    at.button[0].click()
    at.run()
    assert "Unknown user or wrong password." in texts(at)
    assert "principal" not in at.session_state
    at.text_input(key="login_password").input("otto-password-1")
    at.button[0].click()
    at.run()
    assert at.session_state["principal"].name == "otto"
    at.run()  # in a browser: the reload after the cookie route (tests/e2e/test_sessions_browser.py)
    assert "Signed in as **otto** (operator)" in texts(at)


def test_oidc_sign_in_maps_the_claim_to_roles(write_config, audit_schema, monkeypatch) -> None:
    path = write_config([], audit=audit_schema.model_dump(),
                        auth={"oidc": {"roles_claim": "groups", "role_map": {"ops-admins": "admin"}}})
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [b.label for b in at.button] == ["Sign in"]
    assert "principal" not in at.session_state

    at.user = {"is_logged_in": True, "email": "ada@example.com", "groups": ["staff", "ops-admins"]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    who = at.session_state["principal"]
    assert (who.name, who.roles) == ("ada@example.com", ("admin",))
    assert "Signed in as **ada@example.com** (admin)" in texts(at)


def test_scale_form_offers_configured_deployments_and_shows_the_cost(write_config, audit_schema, k8s_sim,
                                                                      monkeypatch) -> None:
    from kubernetes import client

    from sandbox.k8s_sim import DEFAULT_TOKEN
    from tests.fixtures_k8s import api_client

    path = write_config([{"name": "k8s-dev", "kind": "kubernetes", "url": k8s_sim.url, "token": DEFAULT_TOKEN}],
                        audit=audit_schema.model_dump(),
                        actions={"prices": {"cpu_hour": 0.04, "gib_hour": 0.005},
                                 "scale": [{"target": "k8s-dev", "namespace": "hulk-staging",
                                            "deployment": "api-gateway", "min": 1, "max": 4}]})
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    at = run_page(actions_page, OPERATOR)
    assert [t.label for t in at.tabs] == ["Scale or restart a deployment"]  # only what this config can act on
    assert at.selectbox(key="scale_deployment").options == ["hulk-staging/api-gateway (replicas 1..4)"]
    at.number_input(key="scale_replicas").set_value(3)
    at.run()
    at.button(key="scale_dry").click()
    at.run()
    assert "scale hulk-staging/api-gateway on k8s-dev from 1 to 3 replicas" in texts(at)
    assert "+0.0225 USD/h" in [m.value for m in at.metric]  # 2 pods x (0.25 CPU x 0.04 + 0.25 GiB x 0.005)
    at.text_input(key="confirm_text").input("api-gateway")
    at.run()
    at.button(key="confirm_go").click()
    at.run()
    assert "Done." in texts(at)
    api = api_client(k8s_sim.url)
    assert client.AppsV1Api(api).read_namespaced_deployment("api-gateway", "hulk-staging").spec.replicas == 3
    api.close()
