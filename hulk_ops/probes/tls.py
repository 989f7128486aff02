"""TLS for the probes: one SSLContext per `tls:` block, the server certificate's expiry, one-line TLS errors.

Every TLS probe reports `tls.cert_expiry_days` (days until the server certificate's notAfter; negative once
expired) and `tls.cert_expired` (1/0). The default rules make a target degraded below 14 days and down once
expired (with `verify: false`; a verifying client already fails the handshake on an expired certificate).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import certifi

from hulk_ops.core.catalog import MetricSpec
from hulk_ops.core.tls_config import TlsSettings

EXPIRY_DAYS = "tls.cert_expiry_days"
EXPIRED = "tls.cert_expired"
RULES = [f"{EXPIRY_DAYS} < 14", f"{EXPIRED} > 0 -> down"]
# catalog entries every TLS kind adds to its own (exported as hulk_ops_<kind>_tls_cert_expiry_days, ...)
METRICS = (
    MetricSpec(EXPIRY_DAYS, "Days until the server certificate's notAfter (negative once expired)"),
    MetricSpec(EXPIRED, "1 when the server certificate has expired"),
)
REFRESH_S = 3600.0  # how long a certificate read by a separate handshake stands for the server's


def client_context(tls: TlsSettings | None) -> ssl.SSLContext:
    """The client context for a `tls:` block (None: verify against certifi's CAs). Shared between targets with
    the same block; rebuilt when one of its files changes (a rotated client certificate is picked up by the
    next client the probe builds)."""
    return _context(tls, _stamp(tls))


def reading_context(tls: TlsSettings | None) -> ssl.SSLContext:
    """For a handshake that only reads the server certificate: the client certificate, no verification (the
    client itself verifies, with its own trust store, on its own connection)."""
    return client_context((tls or TlsSettings()).model_copy(update={"verify": False}))


def _stamp(tls: TlsSettings | None) -> tuple[float, ...]:
    if tls is None:
        return ()
    out = []
    for path in (tls.ca_file, tls.cert_file, tls.key_file):
        try:
            out.append(os.stat(path).st_mtime if path else 0.0)
        except OSError:
            out.append(-1.0)  # gone since config load: loading it fails with the OS's reason
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _context(tls: TlsSettings | None, _stamp: tuple[float, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=(tls.ca_file if tls and tls.ca_file else certifi.where()))
    if tls is not None and not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls is not None and tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


# -- the certificate's expiry -----------------------------------------------------------------

def not_after(der: bytes) -> datetime:
    """notAfter of a DER certificate (read from the TBSCertificate's validity; works unverified too)."""
    _, body, _ = _tlv(der, 0)  # Certificate
    _, pos, _ = _tlv(der, body)  # TBSCertificate
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:  # [0] version
        pos = end
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _tlv(der, pos)[2]
    _, validity, _ = _tlv(der, pos)
    after = _tlv(der, validity)[2]  # skip notBefore
    tag, start, end = _tlv(der, after)
    text = der[start:end].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError(f"certificate validity: unexpected ASN.1 tag {tag:#x}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("certificate: truncated DER")
    return tag, pos, pos + length


def cert_metrics(der: bytes | None, now: datetime | None = None) -> dict[str, Any]:
    if not der:
        return {}
    days = (not_after(der) - (now or datetime.now(UTC))).total_seconds() / 86_400
    return {EXPIRY_DAYS: round(days, 3), EXPIRED: days <= 0}


def peer_der(ssl_object: Any) -> bytes | None:
    """The server certificate (DER) of a live TLS connection's SSLObject/SSLSocket (None: not TLS)."""
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


async def handshake_der(host: str, port: int, context: ssl.SSLContext, server_name: str | None) -> bytes | None:
    """One TLS handshake to host:port with the probe's own context, for the server certificate (the caller's
    deadline bounds it: every probe runs inside its timeout)."""
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_name or host)
    try:
        return peer_der(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()


def handshake_der_blocking(host: str, port: int, context: ssl.SSLContext, server_name: str | None,
                           timeout: float) -> bytes | None:
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=server_name or host) as sock:
        return peer_der(sock)


class CertWatch:
    """The server certificate as read by a separate handshake, kept for REFRESH_S (one handshake an hour,
    not one a cycle)."""

    def __init__(self) -> None:
        self.der: bytes | None = None
        self._read_at = -REFRESH_S

    def due(self) -> bool:
        return time.monotonic() - self._read_at >= REFRESH_S

    def keep(self, der: bytes | None) -> bytes | None:
        self.der, self._read_at = der, time.monotonic()
        return der

    async def get(self, read: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        """The certificate, read again when due. A read that fails (the client's own request has just succeeded)
        leaves the metric out this cycle instead of making the target down; the next cycle tries again."""
        if not self.due():
            return self.der
        try:
            return self.keep(await read())
        except OSError:  # ssl.SSLError included
            self.der = None
            return None


# -- errors -----------------------------------------------------------------------------------

_VERIFY_TEXT = re.compile(r"certificate verify failed: (.+?)\s*(?:\(_ssl\.c:\d+\)|['\")\]]|$)")


def describe(chain: Iterable[BaseException], where: str, tls: TlsSettings | None) -> str | None:
    """One line for a TLS failure anywhere in an exception chain (None: not a TLS failure)."""
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError) and getattr(err, "verify_message", None):
            return f"certificate verify failed: {err.verify_message} ({_where(where, tls, 'ca_file')})"
        if isinstance(err, ssl.SSLError) and not isinstance(err, ssl.SSLCertVerificationError) \
                and getattr(err, "reason", None):
            return _ssl_error(str(err.reason), where, tls)
    for err in chain:  # clients that pass the TLS error on as text
        text = str(err)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            match = _VERIFY_TEXT.search(text)
            reason = match.group(1) if match else "certificate verify failed"
            return f"certificate verify failed: {reason} ({_where(where, tls, 'ca_file')})"
        alert = re.search(r"\[SSL: ([A-Z0-9_]+)\]", text)
        if alert:
            return _ssl_error(alert.group(1), where, tls)
    return None


_DROPPED = ("reset", "closed", "disconnected", "incomplete handshake")


def with_client_cert_hint(message: str, tls: TlsSettings | None) -> str:
    """A dropped connection, said with the likely reason when the target shows no client certificate."""
    hint = client_cert_hint(tls)
    if not hint or "client certificate" in message or not any(word in message.lower() for word in _DROPPED):
        return message
    return " ".join(message.split()) + hint


def client_cert_hint(tls: TlsSettings | None) -> str:
    """A server that wants a client certificate, or refuses the one shown, often just drops the connection after
    the handshake: said when the target has a tls: block."""
    if tls is None:
        return ""
    if tls.cert_file:
        return f": the server may not accept the client certificate (cert_file={tls.cert_file})"
    return ": the server may require a client certificate (tls.cert_file, tls.key_file)"


def _ssl_error(reason: str, where: str, tls: TlsSettings | None) -> str:
    upper = reason.upper()
    if "CERTIFICATE_REQUIRED" in upper:
        return f"TLS handshake refused: the server requires a client certificate (tls.cert_file, tls.key_file) " \
               f"({where})"
    if any(word in upper for word in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR")):
        return f"TLS handshake refused: the server does not accept the client certificate ({reason.lower()}) " \
               f"({_where(where, tls, 'cert_file')})"
    if "EOF" in upper:
        return f"TLS connection closed by the server ({reason.lower()}) ({where}){client_cert_hint(tls)}"
    if "WRONG_VERSION_NUMBER" in upper or "RECORD_LAYER_FAILURE" in upper or "PACKET_LENGTH_TOO_LONG" in upper:
        return f"TLS handshake failed: the server does not speak TLS on this port ({where})"
    return f"TLS error: {reason.lower()} ({_where(where, tls, 'ca_file')})"


def _where(where: str, tls: TlsSettings | None, field: str) -> str:
    path = getattr(tls, field, None) if tls is not None else None
    return f"{where}, {field}={path}" if path else where
