"""Web security of the dashboard as `hulk-ops dashboard` launches it: XSRF and CORS protection stay on whatever
config.toml, STREAMLIT_* variable or working directory says, and a login needs a real cookie secret.

The effective config is read twice: by Streamlit's own CLI and config module in a fresh interpreter given the
launcher's exact argv, environment and working directory, and from the running server's behaviour (XSRF cookie,
an upload without a token refused, no `Access-Control-Allow-Origin: *`, a foreign WebSocket Origin refused).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hulk_ops.actions.identity import hash_secret
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.launch import COOKIE_ENV, MIN_COOKIE_SECRET, CookieSecretMissing, streamlit_argv, streamlit_env
from sandbox.services import free_port, stop_process, wait_port

# Streamlit's own CLI (click flags -> config), with bootstrap.run replaced by a dump of the effective options
EFFECTIVE = r"""
import hashlib, json, sys
from streamlit import config
from streamlit.web import bootstrap, cli

def dump(*_args, **_kwargs):
    keys = ["server.enableXsrfProtection", "server.enableCORS", "server.cookieSecret", "server.port"]
    out = {k: config.get_option(k) for k in keys}
    out["server.cookieSecret"] = hashlib.sha256(out["server.cookieSecret"].encode()).hexdigest()
    out["where"] = {k: config.get_where_defined(k) for k in keys}
    print("EFFECTIVE " + json.dumps(out))
    sys.exit(0)

bootstrap.run = bootstrap.run_asgi_app = dump  # a script (app.py) or an st.App (server_app.py)
cli.main(sys.argv[1:], prog_name="streamlit", standalone_mode=True)
"""
HOSTILE_TOML = """[server]
enableXsrfProtection = false
enableCORS = false
"""
HOSTILE_ENV = {"STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false", "STREAMLIT_SERVER_ENABLE_CORS": "false"}


@pytest.fixture
def auth_config(write_config):
    return write_config([], auth={"users": [{"name": "otto", "role": "operator",
                                             "password_hash": hash_secret("otto-password-1")}]})


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    """A working directory and HOME whose .streamlit/config.toml switches XSRF and CORS protection off."""
    folder = tmp_path / "cwd"
    (folder / ".streamlit").mkdir(parents=True)
    (folder / ".streamlit" / "config.toml").write_text(HOSTILE_TOML, encoding="utf-8")
    return folder


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    return {**env, "HOME": str(home), **extra}


def cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hulk_ops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


# -- the cookie secret ---------------------------------------------------------------------------------
def test_login_without_a_cookie_secret_refuses_to_start(auth_config, hostile_dir) -> None:
    done = cli(["dashboard", "--config", str(auth_config), "--port", str(free_port())], hostile_dir,
               clean_env(hostile_dir))
    assert done.returncode == 2, done.stderr
    assert COOKIE_ENV in done.stderr and "server.cookieSecret" in done.stderr
    assert str(auth_config) in done.stderr and f"at least {MIN_COOKIE_SECRET} characters" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_short_cookie_secret_is_refused_without_showing_it(auth_config, hostile_dir) -> None:
    short = "tooShort-" + secrets.token_hex(4)  # 17 characters
    done = cli(["dashboard", "--config", str(auth_config)], hostile_dir, clean_env(hostile_dir, **{COOKIE_ENV: short}))
    assert done.returncode == 2, done.stderr
    assert f"{COOKIE_ENV}: the dashboard's cookie secret is 17 characters" in done.stderr
    assert short not in done.stdout + done.stderr

    (hostile_dir / ".streamlit" / "config.toml").write_text(HOSTILE_TOML + f'cookieSecret = "{short}"\n')
    done = cli(["dashboard", "--config", str(auth_config)], hostile_dir, clean_env(hostile_dir))
    assert done.returncode == 2, done.stderr
    assert f"{hostile_dir / '.streamlit' / 'config.toml'}: server.cookieSecret: the dashboard's cookie secret is " \
           "17 characters" in done.stderr
    assert short not in done.stdout + done.stderr


def test_a_cookie_secret_in_config_toml_or_secrets_toml_counts(auth_config, hostile_dir, monkeypatch) -> None:
    from hulk_ops.dashboard.launch import check_cookie_secret

    config = load_config(auth_config)
    good = secrets.token_urlsafe(40)
    monkeypatch.chdir(hostile_dir)  # Streamlit reads ./.streamlit/ of the working directory
    (hostile_dir / ".streamlit" / "config.toml").write_text(f'[server]\ncookieSecret = "{good}"\n')
    check_cookie_secret(config, clean_env(hostile_dir))  # no exception
    (hostile_dir / ".streamlit" / "config.toml").unlink()
    (hostile_dir / ".streamlit" / "secrets.toml").write_text(f'[auth]\ncookie_secret = "{good}"\n')
    check_cookie_secret(config, clean_env(hostile_dir))
    (hostile_dir / ".streamlit" / "secrets.toml").unlink()
    with pytest.raises(CookieSecretMissing):
        check_cookie_secret(config, clean_env(hostile_dir))


def test_no_login_needs_no_cookie_secret(write_config, hostile_dir) -> None:
    from hulk_ops.dashboard.launch import check_cookie_secret

    check_cookie_secret(load_config(write_config([])), clean_env(hostile_dir))  # no exception


def test_the_demo_hands_the_dashboard_a_random_secret_in_the_environment(tmp_path: Path) -> None:
    from sandbox.demo import Demo

    one, two = Demo(tmp_path / "a"), Demo(tmp_path / "b")
    assert len(one.cookie_secret) >= MIN_COOKIE_SECRET and one.cookie_secret != two.cookie_secret
    argv = streamlit_argv(8501, "127.0.0.1")
    assert not any(one.cookie_secret in part for part in argv)  # never on a command line (`ps` shows those)


# -- XSRF and CORS: the effective config -----------------------------------------------------------------
def test_streamlit_reads_xsrf_and_cors_on_whatever_config_toml_and_env_say(auth_config, hostile_dir) -> None:
    secret = secrets.token_urlsafe(48)
    env = streamlit_env(str(auth_config), clean_env(hostile_dir, **HOSTILE_ENV, **{COOKIE_ENV: secret}))
    argv = streamlit_argv(free_port(), "127.0.0.1")
    assert argv[1:3] == ["-m", "streamlit"]
    done = subprocess.run([sys.executable, "-c", EFFECTIVE, *argv[3:]], cwd=hostile_dir, env=env,
                          capture_output=True, text=True, timeout=60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("EFFECTIVE ")), None)
    assert line is not None, done.stdout + done.stderr
    effective = json.loads(line.removeprefix("EFFECTIVE "))
    assert effective["server.enableXsrfProtection"] is True
    assert effective["server.enableCORS"] is True
    assert effective["server.cookieSecret"] == hashlib.sha256(secret.encode()).hexdigest()  # not a random one
    assert effective["where"]["server.cookieSecret"] != "<default>"


@pytest.fixture
def hostile_dashboard(auth_config, hostile_dir, tmp_path: Path):
    """`hulk-ops dashboard` started from the hostile directory with the hostile environment."""
    secret = secrets.token_urlsafe(48)
    port = free_port()
    log_path = tmp_path / "dashboard.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "dashboard", "--config", str(auth_config),
                                 "--port", str(port)], cwd=hostile_dir, stdout=log, stderr=log,
                                env=clean_env(hostile_dir, **HOSTILE_ENV, **{COOKIE_ENV: secret}),
                                start_new_session=True)
    try:
        wait_port(port, 90, proc, "dashboard")
        yield f"127.0.0.1:{port}", secret, log_path
    finally:
        stop_process(proc)


def http(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]]]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, message = response.status, response.headers
    except urllib.error.HTTPError as exc:
        status, message = exc.code, exc.headers
    out: dict[str, list[str]] = {}
    for key, value in message.items():
        out.setdefault(key.lower(), []).append(value)
    return status, out


def test_the_running_dashboard_enforces_xsrf_and_cors(hostile_dashboard) -> None:
    import websocket

    host, secret, log_path = hostile_dashboard
    status, headers = http(f"http://{host}/_stcore/health", headers={"Origin": "http://evil.example"})
    assert status == 200
    assert any(c.startswith("_streamlit_xsrf=") for c in headers.get("set-cookie", [])), headers  # XSRF on
    assert headers.get("access-control-allow-origin", []) in ([], [f"http://{host}"]), headers  # CORS on: no *

    # a state-changing request without the XSRF token is refused before anything else is looked at
    status, _ = http(f"http://{host}/_stcore/upload_file/some-session/some-file", method="PUT",
                     headers={"Origin": "http://evil.example", "Content-Type": "multipart/form-data; boundary=x"})
    assert status == 403

    # the WebSocket: a foreign origin is refused, the dashboard's own is accepted
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://{host}/_stcore/stream", origin="http://evil.example", timeout=15)
    assert refused.value.status_code == 403
    ws = websocket.create_connection(f"ws://{host}/_stcore/stream", origin=f"http://{host}", timeout=15)
    ws.close()
    # ...but Streamlit compares host names only: another port (or scheme) on the same host passes. That is
    # why docs/deployment-security.md puts a proxy that checks the exact Origin in front.
    ws = websocket.create_connection(f"ws://{host}/_stcore/stream", origin="http://127.0.0.1:1", timeout=15)
    ws.close()

    assert secret not in log_path.read_text(encoding="utf-8", errors="replace")
