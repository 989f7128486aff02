"""Who is acting: local users (argon2 password and API-token hashes in config) and OIDC claims.

- The CLI authenticates by `HULK_OPS_TOKEN` only (`principal_from_token`): a token looks like
  `hko_<token_id>_<secret>`; the id finds the user, the argon2 hash of the whole token proves it.
  A name on the command line is never enough.
- The dashboard logs local users in by name and password (`login`), or signs in through Streamlit's
  OIDC (`st.login`) and maps the configured claim to roles (`roles_from_claims`).
Only hashes are stored; a wrong name and a wrong password take the same time and give one answer.
A password longer than `MAX_PASSWORD` is refused unhashed, and at most `HASH_SLOTS` password checks run at
once in a process (each argon2 check takes 64 MiB and ~0.2 s of CPU, measured on the 2-core test machine):
sign-ins cannot be used to burn the server.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hulk_ops.actions.model import Principal
from hulk_ops.core.action_config import ROLES, AuthSettings, OidcSettings, Role

TOKEN = re.compile(r"^hko_([0-9a-f]{8,32})_([A-Za-z0-9_-]{20,200})$")
TOKEN_ENV = "HULK_OPS_TOKEN"  # noqa: S105 - the variable's name, not a secret
_HASHER = PasswordHasher()
MAX_PASSWORD = 1024
HASH_SLOTS = 2
HASH_WAIT_S = 10.0
_slots = threading.BoundedSemaphore(HASH_SLOTS)


class AuthError(Exception):
    """Authentication failed; the message says what to do, never which part was wrong."""


class LoginBusy(AuthError):
    """Every password-check slot stayed taken for `HASH_WAIT_S`: the attempt was not checked."""


@functools.cache
def _dummy() -> str:
    """A hash verified against when the name is unknown, so that takes as long as a wrong password."""
    return _HASHER.hash("hulk-ops: no such user")


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify(hashed: str, secret: str) -> bool:
    try:
        return _HASHER.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str, str]:
    """(token_id, token, argon2 hash of the token): the token is shown once, only the hash is kept."""
    token_id = secrets.token_hex(8)
    token = f"hko_{token_id}_{secrets.token_urlsafe(32)}"
    return token_id, token, hash_secret(token)


def principal_from_token(auth: AuthSettings, token: str | None) -> Principal:
    if not token:
        raise AuthError(f"no API token: set {TOKEN_ENV} (create one with `hulk-ops user add NAME --role ROLE`)")
    match = TOKEN.match(token.strip())
    if match is None:
        raise AuthError(f"{TOKEN_ENV} is not a hulk-ops API token (hko_...)")
    user = next((u for u in auth.users if u.token_id == match.group(1)), None)
    if user is None or not user.token_hash:
        verify(_dummy(), token)
        raise AuthError(f"{TOKEN_ENV} is not valid for this config (unknown or revoked token)")
    if not verify(user.token_hash, token.strip()):
        raise AuthError(f"{TOKEN_ENV} is not valid for this config (unknown or revoked token)")
    return Principal(name=user.name, roles=(user.role,), via="cli")


def login(auth: AuthSettings, name: str, password: str) -> Principal | None:
    """A local user by name and password, or None (the same for an unknown name and a wrong password).
    Raises LoginBusy when no password-check slot frees up in time."""
    if len(password) > MAX_PASSWORD or len(name) > 256:
        return None
    if not _slots.acquire(timeout=HASH_WAIT_S):
        raise LoginBusy("the dashboard is busy checking other sign-ins: try again in a few seconds")
    try:
        user = auth.user(name.strip())
        if user is None or not user.password_hash:
            verify(_dummy(), password)
            return None
        if not verify(user.password_hash, password):
            return None
        return Principal(name=user.name, roles=(user.role,), via="dashboard")
    finally:
        _slots.release()


def roles_from_claims(oidc: OidcSettings, claims: Mapping[str, Any]) -> tuple[Role, ...]:
    """Roles from the configured claim (a string or a list); role_map translates, role names pass as is."""
    value = claims.get(oidc.roles_claim)
    values = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
    found: set[str] = set()
    for item in values:
        mapped = oidc.role_map.get(str(item)) or (str(item) if str(item) in ROLES else None)
        if mapped:
            found.add(mapped)
    if not found and oidc.default_role:
        found.add(oidc.default_role)
    return tuple(r for r in ROLES if r in found)


def oidc_principal(oidc: OidcSettings, claims: Mapping[str, Any]) -> Principal:
    name = str(claims.get("email") or claims.get("preferred_username") or claims.get("name") or claims.get("sub"))
    return Principal(name=name, roles=roles_from_claims(oidc, claims), via="dashboard")


DEMO_PASSWORDS = {"viewer": "viewer-demo", "operator": "operator-demo", "admin": "admin-demo"}


def demo_auth_section() -> dict[str, Any]:
    """The `auth:` section of the demo config: one user per role, passwords on the login page."""
    hint = "Demo users (local, for this sandbox only): " + ", ".join(
        f"{name} / {password}" for name, password in DEMO_PASSWORDS.items())
    users = [{"name": role, "role": role, "password_hash": hash_secret(password)}
             for role, password in DEMO_PASSWORDS.items()]
    return {"login_hint": hint, "users": users}
