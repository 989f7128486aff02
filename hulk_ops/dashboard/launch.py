"""`hulk-ops dashboard`: this process becomes the Streamlit server
(`streamlit run hulk_ops/dashboard/app.py`), warmed up first and exiting promptly on SIGTERM (both in
hulk_ops/dashboard/serve.py), with the config the CLI already validated.

Security settings are flags, so no `.streamlit/config.toml`, `STREAMLIT_*` variable or working directory can
turn them off by accident (flags beat every other source): XSRF protection and CORS protection stay on.

With a login configured (`auth:`), Streamlit needs a cookie secret that is the same on every replica and
across restarts (its default is a random one per process). `hulk-ops dashboard` refuses to start without one
of at least `MIN_COOKIE_SECRET` characters; it is read from where Streamlit reads it:
`STREAMLIT_SERVER_COOKIE_SECRET`, `server.cookieSecret` in a `config.toml` Streamlit reads, or (OIDC)
`cookie_secret` in the `[auth]` section of `.streamlit/secrets.toml`. `hulk-ops demo` generates a random one
and hands it over in the environment (never on the command line, which `ps` shows; never logged).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from hulk_ops.core.config import Config

APP = Path(__file__).with_name("app.py")
COOKIE_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"
COOKIE_OPTION = "server.cookieSecret"
MIN_COOKIE_SECRET = 32


class CookieSecretMissing(Exception):
    """Login configured but no usable cookie secret: `hulk-ops dashboard` exits 2 with this message."""


def streamlit_argv(port: int, host: str) -> list[str]:
    """The same server as a separate command line (`python -m streamlit run ...`): what `hulk-ops dashboard`
    runs in-process, for tools and tests that start Streamlit themselves."""
    from hulk_ops.dashboard import serve

    return [sys.executable, "-m", "streamlit", "run", *serve.streamlit_args(port, host)]


def streamlit_env(config_path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ, HULK_OPS_CONFIG=str(Path(config_path).resolve()))
    # make the repository's packages importable by the script Streamlit runs
    root = str(APP.parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def check_cookie_secret(config: Config, env: Mapping[str, str]) -> None:
    """Raise CookieSecretMissing when a login is configured and Streamlit would sign with a random secret
    (or a short one). Reads the sources Streamlit reads, in its order of precedence; never prints a value."""
    if not config.auth.enabled:
        return
    where, secret = _cookie_secret(env)
    if secret is None:
        raise CookieSecretMissing(
            f"{config.source}: auth is configured, so the dashboard needs a cookie secret (at least "
            f"{MIN_COOKIE_SECRET} characters, the same on every replica): set {COOKIE_ENV} in the environment "
            f"(e.g. {COOKIE_ENV}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')), or "
            f"{COOKIE_OPTION} in .streamlit/config.toml, or cookie_secret in the [auth] section of "
            ".streamlit/secrets.toml (OIDC). `hulk-ops demo` generates one for the sandbox.")
    if len(secret) < MIN_COOKIE_SECRET:
        raise CookieSecretMissing(
            f"{where}: the dashboard's cookie secret is {len(secret)} characters; it must be at least "
            f"{MIN_COOKIE_SECRET} (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")


def _cookie_secret(env: Mapping[str, str]) -> tuple[str, str | None]:
    """(where, value) of the cookie secret Streamlit will use; value None when it would generate one."""
    # Streamlit: [auth] cookie_secret in secrets.toml wins over server.cookieSecret (server_util.get_cookie_secret)
    for path in reversed(_streamlit_files("secrets.toml", env)):
        auth = _toml(path).get("auth")
        if isinstance(auth, dict) and auth.get("cookie_secret"):
            return f"{path}: [auth] cookie_secret", str(auth["cookie_secret"])
    if env.get(COOKIE_ENV):
        return COOKIE_ENV, env[COOKIE_ENV]
    for path in reversed(_streamlit_files("config.toml", env)):
        server = _toml(path).get("server")
        if isinstance(server, dict) and server.get("cookieSecret"):
            return f"{path}: {COOKIE_OPTION}", str(server["cookieSecret"])
    return "", None


def _streamlit_files(name: str, env: Mapping[str, str]) -> list[Path]:
    """The files Streamlit reads `name` from, lowest precedence first: ~/.streamlit, ./.streamlit, and the
    script's own folder (streamlit.config.get_config_files)."""
    home = Path(env.get("HOME") or Path.home())
    return [home / ".streamlit" / name, Path.cwd() / ".streamlit" / name, APP.parent / ".streamlit" / name]


def _toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # absent, or Streamlit itself will report the syntax error


def run_dashboard(config: Config, config_path: str, port: int = 8501, host: str = "127.0.0.1",
                  watch_config: bool = False) -> int:
    check_cookie_secret(config, streamlit_env(config_path))
    from hulk_ops.dashboard import serve

    return serve.run(config, config_path, port, host, watch_config=watch_config)
