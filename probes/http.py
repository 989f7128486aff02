"""Generic HTTP probe (httpx.AsyncClient, one per target, reused).

One request per cycle; latency is its full round trip (headers and body). Metrics: status_code,
body_bytes (bytes read, at most `max_body_bytes`). Down, with the reason, when the status is not
an expected one ("expected status 200, got 503") or the body lacks `expect_body` (a substring, or
`{regex: ...}` searched in the body read). Header values are secrets: never shown, redacted from
errors.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from typing import Literal

import httpx
from pydantic import Field, SecretStr, field_validator

from hulk_ops.config import Strict, TargetSettings
from probes.base import Measurement, Probe, ProbeFailure

METHODS = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]


class BodyRegex(Strict):
    regex: str = Field(min_length=1)


class Settings(TargetSettings):
    kind: Literal["http"]
    method: METHODS = "GET"
    expect_status: int | list[int] = 200
    expect_body: str | BodyRegex | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    verify_tls: bool = True
    follow_redirects: bool = True
    max_body_bytes: int = Field(1_048_576, ge=0, le=64 * 1_048_576)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("expect_body", mode="before")
    @classmethod
    def _body(cls, value: object) -> object:
        # checked here so that a mistake gets one message, not one per member of the union
        if value is None or isinstance(value, str | BodyRegex):
            return value
        if not isinstance(value, dict) or set(value) != {"regex"} or not isinstance(value["regex"], str):
            raise ValueError("must be a substring, or {regex: <pattern>}")
        try:
            re.compile(value["regex"])
        except re.error as exc:
            raise ValueError(f"regex: invalid regular expression: {exc}") from None
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: int | list[int]) -> int | list[int]:
        for code in value if isinstance(value, list) else [value]:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        if isinstance(value, list) and not value:
            raise ValueError("must list at least one status code")
        return value

    def statuses(self) -> list[int]:
        return self.expect_status if isinstance(self.expect_status, list) else [self.expect_status]

    def secrets(self) -> list[str]:
        # short header values ("1", "yes") are no secrets; redacting them would garble every message
        values = [v.get_secret_value() for v in self.headers.values()]
        return [*super().secrets(), *(v for v in values if len(v) >= 4)]


class HttpProbe(Probe[Settings, httpx.AsyncClient]):
    kind = "http"

    async def _connect(self) -> httpx.AsyncClient:
        # httpx loads the CA bundle into a new SSL context per client (even for http://): 20-60 ms of CPU on
        # a busy host, paid again after every failure. A worker thread pays it, not the event loop.
        return await asyncio.to_thread(self._build_client)

    def _build_client(self) -> httpx.AsyncClient:
        s = self.settings
        return httpx.AsyncClient(
            headers={k: v.get_secret_value() for k, v in s.headers.items()},
            verify=ssl_context(s.verify_tls),
            follow_redirects=s.follow_redirects,
            timeout=httpx.Timeout(s.timeout_s),
        )

    async def _close(self, client: httpx.AsyncClient) -> None:
        await client.aclose()

    async def _measure(self, client: httpx.AsyncClient) -> Measurement:
        s = self.settings
        started = time.perf_counter()
        async with client.stream(s.method, s.url) as response:
            body = await read_body(response, s.max_body_bytes)
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code not in s.statuses():
            expected = " or ".join(str(c) for c in s.statuses())
            reason = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise ProbeFailure(f"expected status {expected}, got {response.status_code}{reason}")
        check_body(s.expect_body, body.decode(response.encoding or "utf-8", errors="replace"))
        return Measurement(latency_ms=latency_ms, version=response.headers.get("server"),
                           metrics={"status_code": response.status_code, "body_bytes": len(body)},
                           details={"http_version": response.http_version})

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out after {self.settings.timeout_s:.1f} s"
        if isinstance(exc, httpx.TooManyRedirects):
            return f"too many redirects from {self.settings.url}"
        if isinstance(exc, httpx.ConnectError) and "SSL" in str(exc):
            return f"TLS error: {exc}"[:300]
        return None


@functools.cache
def ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per setting for every HTTP probe: httpx builds a new one per client otherwise, loading
    the CA bundle each time (~35 ms of CPU); with clients rebuilt after failures, 100 targets that time out
    together spent seconds on it and timed out again."""
    return httpx.create_ssl_context(verify=verify)


async def read_body(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def check_body(expect: str | BodyRegex | None, text: str) -> None:
    if expect is None:
        return
    if isinstance(expect, BodyRegex):
        if not re.search(expect.regex, text):
            raise ProbeFailure(f"body does not match /{expect.regex}/ ({_excerpt(text)})")
    elif expect not in text:
        raise ProbeFailure(f"expected the body to contain {expect!r} ({_excerpt(text)})")


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "body is empty"
    return f"body starts {flat[:80]!r}"


# Metrics kept as history by the store.
TRACKED_METRICS = ("body_bytes",)

PROBE = HttpProbe
