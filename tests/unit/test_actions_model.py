"""Action requests, identity, config sections and the in-place `user add` edit: no servers."""

from __future__ import annotations

import pytest
import yaml

from hulk_ops.actions.executors.nats import subjects_overlap
from hulk_ops.actions.identity import AuthError, login, new_token, principal_from_token, roles_from_claims
from hulk_ops.actions.model import BadRequest, LaunchGpuPod, parse_request
from hulk_ops.actions.useradd import EditError, insert_user
from hulk_ops.core.action_config import AuthSettings, LocalUser, OidcSettings
from hulk_ops.core.config import ConfigError, parse_config


@pytest.mark.parametrize(("data", "message"), [
    ({"action": "purge", "target": "t"}, "unknown action"),
    ({"action": "purge_stream", "target": "t", "stream": "a b"}, "stream: 'a b' is not a stream name"),
    ({"action": "purge_stream", "target": "t", "stream": "S", "keep": 0}, "keep: Input should be greater"),
    ({"action": "scale", "target": "t", "namespace": "Shop", "deployment": "web", "replicas": 1},
     "namespace: 'Shop' is not a Kubernetes name"),
    ({"action": "scale", "target": "t", "namespace": "shop", "deployment": "web"}, "replicas: field required"),
    ({"action": "launch_gpu", "target": "t", "gpu_type": "A40", "image": "i", "max_hours": 0},
     "max_hours: Input should be greater than 0"),
    ({"action": "stop_pod", "target": "t", "pod_id": "p", "force": True}, "force: unknown field"),
])
def test_bad_requests_name_the_field(data, message) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_request(data)


def test_parameters_are_normalised_and_secrets_redacted() -> None:
    request = parse_request({"action": "launch_gpu", "target": "rp", "gpu_type": "A40", "image": "img:1",
                             "max_hours": 2, "env": {"HF_TOKEN": "hf_abc", "MODE": "fast"}})
    assert isinstance(request, LaunchGpuPod)
    params = request.params()
    assert params["env"] == {"HF_TOKEN": "***", "MODE": "fast"}
    assert "hf_abc" not in repr(params) and "hf_abc" not in repr(request)
    assert request.has_secrets()
    assert list(params) == sorted(params)
    other = parse_request({**request.params(redact=False), "env": {"HF_TOKEN": "other", "MODE": "fast"}})
    assert other.fingerprint() != request.fingerprint()  # a key reused with another secret is another request
    assert parse_request(request.params(redact=False)).fingerprint() == request.fingerprint()
    job = parse_request({"action": "run_job", "target": "rp", "endpoint": "e1",
                         "input": {"prompt": "x", "auth": {"api_key": "k"}}})
    assert job.params()["input"] == {"auth": "***", "prompt": "x"}


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("orders.eu", "orders.eu", True), ("orders.*", "orders.eu", True), ("orders.>", "orders.eu.x", True),
    (">", "anything", True), ("orders.eu", "orders.us", False), ("orders.*", "orders.eu.x", False),
    ("orders", "orders.eu", False), ("*.eu", "orders.*", True),
])
def test_subject_overlap(a: str, b: str, overlap: bool) -> None:
    assert subjects_overlap(a, b) is overlap
    assert subjects_overlap(b, a) is overlap


def test_tokens_authenticate_and_names_alone_do_not() -> None:
    token_id, token, token_hash = new_token()
    auth = AuthSettings(users=[LocalUser(name="otto", role="operator", token_id=token_id, token_hash=token_hash)])
    who = principal_from_token(auth, token)
    assert (who.name, who.roles, who.via) == ("otto", ("operator",), "cli")
    for bad in (None, "", "otto", token[:-1] + ("A" if token[-1] != "A" else "B"), f"hko_{'0' * 16}_{'x' * 40}"):
        with pytest.raises(AuthError):
            principal_from_token(auth, bad)


def test_password_login() -> None:
    from hulk_ops.actions.identity import hash_secret

    auth = AuthSettings(users=[LocalUser(name="vera", role="viewer", password_hash=hash_secret("s3cret-pass"))])
    assert login(auth, "vera", "s3cret-pass").roles == ("viewer",)
    assert login(auth, "vera", "wrong") is None
    assert login(auth, "nobody", "s3cret-pass") is None


@pytest.mark.parametrize(("claims", "roles"), [
    ({"groups": ["ops", "staff"]}, ("operator",)),
    ({"groups": "ops-admins"}, ("admin",)),
    ({"groups": ["viewer", "ops"]}, ("viewer", "operator")),
    ({"groups": ["staff"]}, ("viewer",)),  # default_role
    ({}, ("viewer",)),
])
def test_roles_from_the_oidc_claim(claims, roles) -> None:
    oidc = OidcSettings(roles_claim="groups", role_map={"ops": "operator", "ops-admins": "admin"})
    assert roles_from_claims(oidc, claims) == roles
    assert roles_from_claims(oidc.model_copy(update={"default_role": None}), {"groups": ["staff"]}) == ()


BASE = "# hand written\nstore:\n  prefix: 'x:'   # keep me\ntargets: []\n"
ENTRY = {"name": "new", "role": "viewer", "token_id": "0123456789abcdef",
         "token_hash": "$argon2id$v=19$m=1,t=1,p=1$a$b"}


@pytest.mark.parametrize("text", [
    BASE,
    BASE + "auth:\n  login_hint: hello\n",
    BASE + "auth:\n  users:\n    - {name: old, role: admin}\n    - name: older\n      role: viewer\n",
    BASE + "auth:\n  users: []\n  login_hint: hi\n",
    "auth:\n  users:\n  - {name: old, role: admin}\n# trailing\ntargets: []",
    "",
])
def test_user_add_edits_in_place(text: str) -> None:
    updated = insert_user(text, ENTRY)
    names = [u["name"] for u in yaml.safe_load(updated)["auth"]["users"]]
    assert names[-1] == "new" and len(names) == len(set(names))
    assert "# keep me" in updated or "keep me" not in text
    parse_config(updated)


def test_user_add_refuses_what_it_cannot_edit_safely() -> None:
    with pytest.raises(EditError):
        insert_user("auth: {users: [{name: a, role: viewer}]}\n", ENTRY)


@pytest.mark.parametrize(("section", "message"), [
    ("actions: {scale: [{target: ghost, namespace: a, deployment: b, max: 3}]}",
     "actions.scale[0].target: unknown target 'ghost'"),
    ("actions: {scale: [{target: bus, namespace: a, deployment: b, max: 3}]}", "'bus' is a nats target"),
    ("actions: {scale: [{target: bus, namespace: a, deployment: b, min: 4, max: 3}]}", "min (4) must not exceed"),
    ("actions: {runpod: {budget_usd: -1}}", "actions.runpod.budget_usd"),
    ("actions: {endpoint_workers: [{target: bus, endpoint: ep1, max: 3}]}",
     "actions.endpoint_workers[0].target: 'bus' is a nats target, not runpod"),
    ("actions: {endpoint_workers: [{target: gpu, endpoint: ep1, max: 3}]}",
     "actions.endpoint_workers[0].target: unknown target 'gpu'"),
    ("actions: {endpoint_workers: [{target: bus, endpoint: ep1, min: 5, max: 3}]}", "min (5) must not exceed"),
    ("audit: {url: mysql://x}", "audit.url: must be a postgresql:// URL"),
    ("auth: {users: [{name: a, role: root}]}", "auth.users[0].role"),
    ("auth: {users: [{name: a, role: viewer}, {name: a, role: admin}]}", "duplicate user 'a'"),
    ("auth: {users: [{name: a, role: viewer, password_hash: plain}]}", "auth.users[0].password_hash"),
])
def test_action_config_errors_name_the_field(section: str, message: str) -> None:
    text = f"{section}\ntargets:\n  - {{name: bus, kind: nats, url: 'nats://h:1'}}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, "x.yaml")
    assert str(err.value).startswith("x.yaml: ")
    assert message in str(err.value)


def test_read_only_is_a_target_field() -> None:
    config = parse_config("targets:\n  - {name: bus, kind: nats, url: 'nats://h:1', read_only: true}\n")
    assert config.targets[0].read_only is True
