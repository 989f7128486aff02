"""API authentication, rate limit and parameter parsing (no servers)."""

from __future__ import annotations

import pytest

from hulk_ops.actions.identity import new_token
from hulk_ops.api import views
from hulk_ops.api.auth import ANONYMOUS, Authenticator, RateLimiter, Unauthorized
from hulk_ops.core.config import parse_config


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_auth_configured_serves_anonymously_and_any_token_configured_requires_one() -> None:
    assert Authenticator(parse_config("targets: []")).authenticate(None) == ANONYMOUS
    token_id, token, token_hash = new_token()
    config = parse_config(f"""
api: {{tokens: [static-token-0123]}}
auth: {{users: [{{name: bo, role: operator, token_id: "{token_id}", token_hash: "{token_hash}"}}]}}
""")
    auth = Authenticator(config)
    for header in (None, "", "Basic abc", "Bearer ", "Bearer hko_00000000_" + "x" * 30, "Bearer static-token-012"):
        with pytest.raises(Unauthorized):
            auth.authenticate(header)
    assert auth.authenticate(f"Bearer {token}").name == "bo"
    assert auth.authenticate(f"bearer {token}").roles == ("operator",)  # the cached verification
    assert auth.authenticate("Bearer static-token-0123").name == "api-token-1"


def test_rate_limit_is_a_token_bucket_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock)
    assert [limiter.allow("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.allow("a") == pytest.approx(0.5)
    assert limiter.allow("b") == 0
    clock.now = 0.5
    assert limiter.allow("a") == 0 and limiter.allow("a") > 0


def test_parameters() -> None:
    assert [views.parse_window(w) for w in ("90", "90s", "15m", "1h", "7d")] == [90, 90, 900, 3600, 604_800]
    for bad in ("0s", "32d", "1w", "soon"):
        with pytest.raises(views.BadParameter, match="window"):
            views.parse_window(bad)
    assert views.parse_since("1700000000") == 1_700_000_000
    assert views.parse_since("2023-11-14T22:13:20Z") == views.parse_since("2023-11-14T22:13:20") == 1_700_000_000
    with pytest.raises(views.BadParameter, match="since"):
        views.parse_since("yesterday")
    with pytest.raises(views.BadParameter, match="limit"):
        views.parse_limit("0", 100, 1000)
