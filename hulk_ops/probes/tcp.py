"""Generic TCP probe (asyncio): can a connection be opened, and how fast?

`url` is tcp://host:port. Latency is the connect time (the TCP handshake). With `expect`, the
probe also reads what the server says first (a banner: SSH, SMTP, NATS INFO; optionally after
sending `send`) and is down unless it contains `expect`. Metrics: banner_bytes (only when a
banner is read). Refused, unresolvable, silent (no banner) or timed out: down.
There is no client to reuse: each cycle opens and closes one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.config import TargetSettings
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure


class Settings(TargetSettings):
    kind: Literal["tcp"]
    send: str | None = Field(None, description="text sent after connecting (e.g. 'PING\\r\\n')")
    expect: str | None = Field(None, min_length=1, description="substring the server's first bytes must contain")
    read_bytes: int = Field(4096, ge=1, le=1_048_576)

    @field_validator("url")
    @classmethod
    def _tcp_url(cls, value: str) -> str:
        host_port(value)
        return value

    def address(self) -> tuple[str, int]:
        return host_port(self.url)


def host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise ValueError(f"must be tcp://host:port, got {url!r}")
    return parts.hostname, port


class TcpProbe(Probe[Settings, tuple[str, int]]):
    kind = "tcp"

    async def _connect(self) -> tuple[str, int]:
        return self.settings.address()

    async def _measure(self, client: tuple[str, int]) -> Measurement:
        host, port = client
        s = self.settings
        if s.send is None and s.expect is None:
            return await _connect_only(host, port)
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, port)
        connect_ms = (time.perf_counter() - started) * 1000
        metrics: dict[str, float] = {}
        try:
            if s.send:
                writer.write(s.send.encode())
                await writer.drain()
            if s.expect is not None:
                banner = await read_until(reader, s.expect.encode(), s.read_bytes)
                metrics["banner_bytes"] = len(banner)
                if s.expect.encode() not in banner:
                    seen = banner[:60].decode(errors="replace").strip()
                    said = f"got {seen!r}" if banner else "the server closed the connection without a word"
                    raise ProbeFailure(f"expected {s.expect!r} from {host}:{port}, {said}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await asyncio.wait_for(writer.wait_closed(), 0.5)
        return Measurement(latency_ms=connect_ms, metrics=metrics)


async def _connect_only(host: str, port: int) -> Measurement:
    """A bare connect and close: the event loop's transport with a protocol that ignores everything (a
    StreamReader and StreamWriter pair and a wait for the close cost more than the connect itself)."""
    started = time.perf_counter()
    transport, _protocol = await asyncio.get_running_loop().create_connection(asyncio.Protocol, host, port)
    connect_ms = (time.perf_counter() - started) * 1000
    transport.close()
    return Measurement(latency_ms=connect_ms)


async def read_until(reader: asyncio.StreamReader, expect: bytes, limit: int) -> bytes:
    """Read until `expect` shows up, the server closes, or `limit` bytes came (a banner may arrive in pieces)."""
    data = b""
    while expect not in data and len(data) < limit:
        chunk = await reader.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


TRACKED_METRICS: tuple[str, ...] = ()  # the connect time is the latency, which history keeps anyway

CATALOG = Catalog([
    MetricSpec("banner_bytes", "Bytes of the banner read (with expect)", unit="bytes"),
])

DISPLAY_NAME = "TCP"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = ("latency_ms > 1000",)
# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "tcp", "url": "tcp://127.0.0.1:22"}

PROBE = TcpProbe
