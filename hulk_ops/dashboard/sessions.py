"""Server-side sessions of local dashboard users, and the sign-in throttle; both live in the store.

A session is a random id. The browser holds it only inside a signed cookie (`COOKIE`: HttpOnly,
SameSite=Strict, signed with a key derived from the dashboard's cookie secret); the store holds it only as a
SHA-256 digest, with the user's name, and expires it after `auth.session_idle_s` without a page run (every
check renews it). Signing out deletes it, so the cookie stops working at once in every tab.

A Streamlit script talks to the browser over a WebSocket and cannot set a cookie. After a good password the
script stores a one-time grant (`GRANT_TTL_S`) and sends the browser to `START_PATH`; that route
(session_routes.py) exchanges the grant for the cookie and redirects to the page the person asked for.

Keys (P = `store.prefix`):

| key | type | content |
|---|---|---|
| `P session:<sha256(id)>` | hash | `user`, `created`; expires after `auth.session_idle_s` idle |
| `P session-grant:<sha256(grant)>` | string | the session id, for one exchange within `GRANT_TTL_S` |
| `P login-fail:<user\\|addr>:<sha256>` | sorted set | times of failed sign-ins within the throttle window |
| `P login-lock:<user\\|addr>:<sha256>` | string | end of the lockout (epoch seconds); expires with it |
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

import redis
from itsdangerous import BadSignature, URLSafeSerializer

from hulk_ops.core.action_config import LoginThrottle

COOKIE = "hulk_ops_session"
START_PATH = "/hulk-ops/session/start"
END_PATH = "/hulk-ops/session/end"
GRANT_TTL_S = 60
_SALT = "hulk-ops dashboard session"
log = logging.getLogger("hulk_ops.dashboard")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class CookieSigner:
    """Signs a session id for the cookie and checks it back (itsdangerous, HMAC over a salted derived key)."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt=_SALT)

    def sign(self, session_id: str) -> str:
        return str(self._serializer.dumps(session_id))

    def unsign(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            loaded = self._serializer.loads(value)
        except BadSignature:
            return None
        return loaded if isinstance(loaded, str) else None


class SessionStore:
    def __init__(self, client: redis.Redis, prefix: str, idle_s: float) -> None:
        self.redis = client
        self.prefix = prefix
        self.idle_ms = max(1000, int(idle_s * 1000))

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{_digest(session_id)}"

    def _grant_key(self, grant: str) -> str:
        return f"{self.prefix}session-grant:{_digest(grant)}"

    def create(self, user: str) -> tuple[str, str]:
        """(session id, one-time grant the cookie route exchanges for the session's cookie)."""
        session_id, grant = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(session_id), mapping={"user": user, "created": f"{time.time():.3f}"})
        pipe.pexpire(self._key(session_id), self.idle_ms)
        pipe.set(self._grant_key(grant), session_id, ex=GRANT_TTL_S)
        pipe.execute()
        return session_id, grant

    def redeem(self, grant: str) -> str | None:
        """The session id a grant stands for, once (the grant is deleted as it is read)."""
        if not grant or len(grant) > 100:
            return None
        value = self.redis.getdel(self._grant_key(grant))
        return value.decode() if isinstance(value, bytes) else value

    def user(self, session_id: str) -> str | None:
        """The signed-in user's name, renewing the idle expiry; None when the session expired or was revoked."""
        key = self._key(session_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(key, "user")
        pipe.pexpire(key, self.idle_ms, xx=True)
        name, _renewed = pipe.execute()
        return name.decode() if isinstance(name, bytes) else name

    def revoke(self, session_id: str) -> None:
        self.redis.delete(self._key(session_id))


@dataclass(frozen=True, slots=True)
class Lockout:
    until: float
    why: str  # "user" or "address"

    def message(self, now: float | None = None) -> str:
        wait = max(1, int(self.until - (now if now is not None else time.time())) + 1)
        at = time.strftime("%H:%M:%S UTC", time.gmtime(self.until))
        subject = "this user name" if self.why == "user" else "your address"
        return (f"Too many failed sign-ins for {subject}: sign-in is locked. Try again in {wait} s "
                f"(after {at}).")


class LoginThrottleStore:
    """Failed sign-ins per user name and per client address (a sliding window), and the lockouts they cause.

    `locked()` is asked before any password is hashed; `failed()` records a failure and returns the lockouts
    it started (the caller logs and audits those)."""

    def __init__(self, client: redis.Redis, prefix: str, settings: LoginThrottle) -> None:
        self.redis = client
        self.prefix = prefix
        self.settings = settings

    def _subjects(self, user: str, address: str) -> list[tuple[str, str]]:
        return [("user", _digest(user.strip().lower())), ("address", _digest(address))]

    def locked(self, user: str, address: str, now: float | None = None) -> Lockout | None:
        now = time.time() if now is None else now
        subjects = self._subjects(user, address)
        values = self.redis.mget([f"{self.prefix}login-lock:{kind}:{digest}" for kind, digest in subjects])
        found = [Lockout(float(v), kind) for (kind, _d), v in zip(subjects, values, strict=True)
                 if v is not None and float(v) > now]
        return max(found, key=lambda lock: lock.until) if found else None

    def failed(self, user: str, address: str, now: float | None = None) -> list[Lockout]:
        now = time.time() if now is None else now
        limit = self.settings
        subjects = self._subjects(user, address)
        pipe = self.redis.pipeline(transaction=True)
        for kind, digest in subjects:
            key = f"{self.prefix}login-fail:{kind}:{digest}"
            pipe.zremrangebyscore(key, "-inf", now - limit.window_s)
            pipe.zadd(key, {f"{now:.6f}:{secrets.token_hex(4)}": now})
            pipe.zcard(key)
            pipe.expire(key, int(limit.window_s) + 1)
        counts = pipe.execute()[2::4]
        started = []
        for (kind, digest), count in zip(subjects, counts, strict=True):
            if count >= limit.failures:
                until = now + limit.lockout_s
                # nx: a lockout under way keeps its end; only a new one is reported
                if self.redis.set(f"{self.prefix}login-lock:{kind}:{digest}", f"{until:.3f}",
                                  ex=max(1, int(limit.lockout_s + 0.999)), nx=True):
                    self.redis.delete(f"{self.prefix}login-fail:{kind}:{digest}")
                    started.append(Lockout(until, kind))
        return started
