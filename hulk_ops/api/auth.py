"""Bearer tokens for the API, and a per-principal rate limit.

A token is a user's API token (`hulk-ops user add` prints it; the config keeps its argon2 hash) or a
static token of `api.tokens`. Verifying an argon2 hash costs tens of milliseconds, so a token that
verified is remembered (by its SHA-256, never the token itself) for `CACHE_S`. Every role may read.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hulk_ops.actions.identity import AuthError, principal_from_token
from hulk_ops.actions.model import Principal
from hulk_ops.core.action_config import ROLES
from hulk_ops.core.config import Config

CACHE_S = 300.0
ANONYMOUS = Principal(name="anonymous", roles=("viewer",))


class Unauthorized(Exception):
    """401: the message says what to send, never which part of a token was wrong."""


class Authenticator:
    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.auth = config.auth
        self.static = [t.get_secret_value() for t in config.api.tokens if t.get_secret_value()]
        self.required = bool(self.static) or config.auth.enabled  # users (with or without tokens) or OIDC
        self.clock = clock
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Principal:
        if not self.required:
            return ANONYMOUS
        if not header:
            raise Unauthorized("authentication required: send `Authorization: Bearer <token>`")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("authentication required: send `Authorization: Bearer <token>`")
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock:
            known = self._verified.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        principal = self._verify(token)
        if not any(r in ROLES for r in principal.roles):
            raise Unauthorized(f"{principal.name} holds no role that may read")
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = (principal, now + CACHE_S)
        return principal

    def _verify(self, token: str) -> Principal:
        for i, static in enumerate(self.static):
            if hmac.compare_digest(static.encode(), token.encode()):
                return Principal(name=f"api-token-{i + 1}", roles=("viewer",))
        try:
            return principal_from_token(self.auth, token)
        except AuthError:
            raise Unauthorized("invalid token (unknown, revoked or mistyped)") from None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: `rate` per second sustained, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when allowed (and counted); else the seconds until the next request would be."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) > 10_000:
                    self._buckets.clear()
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate
