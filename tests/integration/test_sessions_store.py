"""Sessions and the sign-in throttle against the real Redis (hulk_ops/dashboard/sessions.py), the cookie route's
`next` check, and the bound on password hashing (hulk_ops/actions/identity.py)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from hulk_ops.actions import identity
from hulk_ops.actions.identity import MAX_PASSWORD, hash_secret, login
from hulk_ops.core.action_config import AuthSettings, LocalUser, LoginThrottle
from hulk_ops.dashboard.session_routes import safe_next
from hulk_ops.dashboard.sessions import CookieSigner, LoginThrottleStore, SessionStore


@pytest.fixture
def client(store_redis_url: str):
    client = redis.Redis.from_url(store_redis_url)
    yield client
    client.close()


def test_a_session_lives_while_used_and_ends_when_revoked(client, store_prefix) -> None:
    store = SessionStore(client, store_prefix, idle_s=1.5)
    session_id, grant = store.create("otto")
    assert not list(client.scan_iter(match=f"{store_prefix}*{session_id}*"))  # only digests are stored
    assert store.redeem(grant) == session_id
    assert store.redeem(grant) is None  # one exchange only
    for _ in range(3):  # each check renews the idle expiry
        time.sleep(0.8)
        assert store.user(session_id) == "otto"
    time.sleep(1.8)
    assert store.user(session_id) is None  # idle too long
    other, _grant = store.create("otto")
    store.revoke(other)
    assert store.user(other) is None


def test_the_cookie_is_signed() -> None:
    signer = CookieSigner("s" * 48)
    value = signer.sign("abc")
    assert signer.unsign(value) == "abc"
    assert CookieSigner("t" * 48).unsign(value) is None
    assert signer.unsign(value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert signer.unsign("abc") is None and signer.unsign(None) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("/incidents?incident=abc", "/incidents?incident=abc"), ("/", "/"), ("", "/"), (None, "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("https://evil.example/", "/"), ("incidents", "/"),
    ("/x\r\nSet-Cookie: a=b", "/"),
])
def test_after_sign_in_only_a_path_of_this_dashboard(value, expected) -> None:
    assert safe_next(value) == expected


def test_five_failures_within_the_window_lock_the_name_and_the_address(client, store_prefix) -> None:
    throttle = LoginThrottleStore(client, store_prefix, LoginThrottle(failures=5, window_s=300, lockout_s=300))
    now = 1_000_000.0
    for i in range(4):
        assert throttle.failed("Otto", "10.0.0.1", now + i) == []
    assert throttle.locked("otto", "10.0.0.9", now + 4) is None
    started = throttle.failed("otto", "10.0.0.1", now + 4)
    assert sorted(lock.why for lock in started) == ["address", "user"]
    lock = throttle.locked("OTTO", "10.0.0.9", now + 5)  # the name, from any address
    assert lock is not None and lock.why == "user" and lock.until == pytest.approx(now + 304)
    assert "Try again in 300 s" in lock.message(now + 5)
    by_address = throttle.locked("ana", "10.0.0.1", now + 5)  # the address, for any name
    assert by_address is not None and by_address.why == "address"
    assert throttle.failed("otto", "10.0.0.1", now + 6) == []  # a lockout under way is not reported again


def test_failures_older_than_the_window_do_not_count(client, store_prefix) -> None:
    throttle = LoginThrottleStore(client, store_prefix, LoginThrottle(failures=3, window_s=10, lockout_s=5))
    assert throttle.failed("ana", "10.0.0.2", 100.0) == []
    assert throttle.failed("ana", "10.0.0.2", 105.0) == []
    assert throttle.failed("ana", "10.0.0.2", 111.0) == []  # the first one has left the window
    assert len(throttle.failed("ana", "10.0.0.2", 112.0)) == 2


def test_password_checks_are_bounded(monkeypatch) -> None:
    auth = AuthSettings(users=[LocalUser(name="otto", role="operator", password_hash=hash_secret("pw-otto-1"))])
    calls = []
    monkeypatch.setattr(identity, "verify", lambda hashed, secret: calls.append(secret) or False)
    assert login(auth, "otto", "x" * (MAX_PASSWORD + 1)) is None and calls == []  # refused before hashing

    slots = identity._slots
    held = [slots.acquire(timeout=1) for _ in range(identity.HASH_SLOTS)]
    assert all(held)
    monkeypatch.setattr(identity, "HASH_WAIT_S", 0.3)
    try:
        started = time.monotonic()
        with pytest.raises(identity.LoginBusy):
            login(auth, "otto", "wrong")
        assert time.monotonic() - started < 2 and calls == []
    finally:
        for _ in held:
            slots.release()
    seen: list[int] = []
    active = [0]
    lock = threading.Lock()

    def slow_verify(hashed: str, secret: str) -> bool:
        with lock:
            active[0] += 1
            seen.append(active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return False

    monkeypatch.setattr(identity, "verify", slow_verify)
    monkeypatch.setattr(identity, "HASH_WAIT_S", 10.0)
    threads = [threading.Thread(target=login, args=(auth, "otto", "wrong")) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and max(seen) <= identity.HASH_SLOTS
