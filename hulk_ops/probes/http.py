"""Generic HTTP probe (aiohttp.ClientSession, one per target, kept alive and reused; rebuilt after a failure).

One request per cycle; latency is its full round trip (headers and body). Metrics: status_code,
body_bytes (bytes read, at most `max_body_bytes`). Down, with the reason, when the status is not
an expected one ("expected status 200, got 503") or the body lacks `expect_body` (a substring, or
`{regex: ...}` searched in the body read). Over https: tls.cert_expiry_days and tls.cert_expired of
the url's server certificate (read by a handshake of its own, hourly). Header values are secrets:
never shown, redacted from errors.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import re
import ssl
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import Strict
from hulk_ops.core.tls_config import VerifyTlsAlias
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure, host_port
from hulk_ops.probes.lazy import lazy_module

if TYPE_CHECKING:
    import aiohttp
else:
    aiohttp = lazy_module("aiohttp")

METHODS = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]


class BodyRegex(Strict):
    regex: str = Field(min_length=1)


class Settings(VerifyTlsAlias):
    kind: Literal["http"]
    tls_schemes = ("https://",)
    method: METHODS = "GET"
    expect_status: int | list[int] = 200
    expect_body: str | BodyRegex | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
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


class HttpProbe(Probe[Settings, "aiohttp.ClientSession"]):
    kind = "http"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cert = tls.CertWatch()

    async def _connect(self) -> aiohttp.ClientSession:
        # the TLS context is shared by every target with the same tls settings (loading certifi's CA bundle costs
        # ~35 ms of CPU; with clients rebuilt after failures, 100 targets timing out together would spend seconds
        # on it), and built in a worker thread so the event loop never pays it
        s = self.settings
        context = await asyncio.to_thread(tls.client_context, s.tls_options())
        return aiohttp.ClientSession(
            headers={k: v.get_secret_value() for k, v in s.headers.items()},
            connector=aiohttp.TCPConnector(ssl=context, limit=0),
            # no timer of aiohttp's per request: check() bounds every probe by timeout_s
            timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None),
            raise_for_status=False,
        )

    async def _close(self, client: aiohttp.ClientSession) -> None:
        await client.close()

    async def _measure(self, client: aiohttp.ClientSession) -> Measurement:
        s = self.settings
        started = time.perf_counter()
        options = s.tls_options()
        server_name = options.server_name if options and options.server_name else None
        async with client.request(s.method, s.url, allow_redirects=s.follow_redirects, max_redirects=MAX_REDIRECTS,
                                  server_hostname=server_name) as response:
            body = await read_body(response, s.max_body_bytes)
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status not in s.statuses():
            expected = " or ".join(str(c) for c in s.statuses())
            reason = f" {response.reason}" if response.reason else ""
            raise ProbeFailure(f"expected status {expected}, got {response.status}{reason}")
        if s.expect_body is not None:
            check_body(s.expect_body, body.decode(_encoding(response.charset), errors="replace"))
        version = response.version
        metrics = {"status_code": response.status, "body_bytes": len(body)}
        if s.url.startswith("https://"):
            metrics.update(tls.cert_metrics(await self._cert.get(self._read_cert)))
        return Measurement(latency_ms=latency_ms, version=response.headers.get("Server"), metrics=metrics,
                           details={"http_version": f"HTTP/{version.major}.{version.minor}" if version else None})

    async def _read_cert(self) -> bytes | None:
        """The url's server certificate from a handshake of its own: aiohttp hands a connection back to its pool
        (and out of reach) as soon as a short body is read."""
        options = self.settings.tls_options()
        parts = urlsplit(self.settings.url)
        return await tls.handshake_der(parts.hostname or "", parts.port or 443, tls.reading_context(options),
                                       options.server_name if options else None)

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, TimeoutError):  # aiohttp's own timeouts (connect, read) are TimeoutErrors
            return f"timed out after {self.settings.timeout_s:.1f} s"
        if isinstance(exc, aiohttp.TooManyRedirects):
            return f"too many redirects from {self.settings.url}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"TLS error: {exc.certificate_error}"[:300]
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
            return f"TLS error: {exc.__cause__ or exc}"[:300]
        if isinstance(exc, getattr(aiohttp, "ClientConnectorDNSError", ())):  # aiohttp >= 3.11; its resolver
            # raises a plain OSError, not socket.gaierror
            return f"cannot resolve host ({host_port(self.settings.url)})"
        if isinstance(exc, aiohttp.ServerDisconnectedError):  # closed before (all of) the answer came
            return f"connection closed by peer ({host_port(self.settings.url)})"
        if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP (garbage, a broken status line or header)
            said = " ".join(str(exc.message).split()) or type(exc).__name__
            return f"unreadable answer from {host_port(self.settings.url)}: {said}"[:300]
        return None


# httpx's default, kept when the probe moved to aiohttp (whose default is 10)
MAX_REDIRECTS = 20


@functools.lru_cache(maxsize=64)  # bounded: the charset is whatever the servers send
def _encoding(charset: str | None) -> str:
    if not charset:
        return "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:  # a server naming a charset Python does not know: read it as UTF-8, replacing errors
        return "utf-8"


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the (decompressed) body; a longer body is cut there, its connection dropped."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


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

CATALOG = Catalog([
    MetricSpec("status_code", "HTTP status of the answer"),
    MetricSpec("body_bytes", "Bytes of the body read (at most max_body_bytes)", unit="bytes"),
    *tls.METRICS,
])

DISPLAY_NAME = "HTTP"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = ("latency_ms > 2000", *tls.RULES)
# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "http", "url": "http://127.0.0.1:8080/health"}

PROBE = HttpProbe
