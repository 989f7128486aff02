"""The `tls:` block of a target: which CA to trust, which client certificate to show, which name to verify.

Paths are relative to the config file (to the working directory for a config given as text). Checked at
config load: each file must exist, be readable and load as PEM (a CA bundle; a certificate
with its key), and a certificate comes with its key. Messages name the field and the path, never what
a file holds. Kinds whose client cannot honour a field refuse it here (see `unsupported`).
"""

from __future__ import annotations

import os
import ssl
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hulk_ops.core.config import Strict, TargetSettings

HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"


class TlsSettings(Strict):
    ca_file: str | None = Field(None, min_length=1, description="PEM CA bundle to trust (default: certifi's)")
    cert_file: str | None = Field(None, min_length=1, description="PEM client certificate (mTLS)")
    key_file: str | None = Field(None, min_length=1, description="PEM private key of cert_file (unencrypted)")
    server_name: str | None = Field(None, pattern=HOSTNAME, description="name to send (SNI) and verify "
                                    "(default: the url's host)")
    verify: bool = Field(True, description="verify the server's certificate chain and name")

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None:
            return path
        base = (info.context or {}).get("config_dir")
        if base and not os.path.isabs(path):  # relative to the config file, like dashboard.radar_file
            path = os.path.join(base, path)
        if not os.path.exists(path):
            raise ValueError(f"{path}: no such file")
        if not os.path.isfile(path):
            raise ValueError(f"{path}: not a file")
        if not os.access(path, os.R_OK):
            raise ValueError(f"{path}: not readable by this process")
        return path

    @model_validator(mode="after")
    def _loads(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise ValueError(f"cert_file and key_file come together ({missing} is missing)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"ca_file: {self.ca_file}: not a PEM CA bundle ({_reason(exc)})") from None
        if self.cert_file and self.key_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ValueError(f"cert_file/key_file: {self.cert_file} with {self.key_file}: cannot be loaded "
                                 f"({_reason(exc)})") from None
        return self


def _no_password() -> bytes:
    raise ValueError("the key is encrypted")  # an encrypted key cannot be used unattended: refuse, never prompt


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or type(exc).__name__)
    if isinstance(exc, OSError):
        return str(exc.strerror or type(exc).__name__)
    return str(exc)[:120]


class TlsTarget(TargetSettings):
    """A target whose client speaks TLS: it takes a `tls:` block (None: the client's own defaults)."""

    tls: TlsSettings | None = None
    # fields of the tls block this kind's client cannot honour: (field, why)
    tls_unsupported: ClassVar[tuple[tuple[str, str], ...]] = ()
    # url schemes a tls block needs (empty: the block itself turns TLS on)
    tls_schemes: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _tls_supported(self) -> TlsTarget:
        if self.tls is None:
            return self
        if self.tls_schemes and not self.url.startswith(self.tls_schemes):
            raise ValueError(f"tls: needs an {' or '.join(self.tls_schemes)} url, got {self.url!r}")
        for name, why in self.tls_unsupported:
            if getattr(self.tls, name) not in (None, True):
                raise ValueError(f"tls.{name}: not supported for kind {self.kind}: {why}")
        return self

    def tls_options(self) -> TlsSettings | None:
        """The TLS settings in force (None: the client's defaults, verifying against the usual CAs)."""
        return self.tls


class VerifyTlsAlias(TlsTarget):
    """A kind that had `verify_tls: false` before the tls block: it stays, as `tls: {verify: false}`."""

    verify_tls: bool = True

    def tls_options(self) -> TlsSettings | None:
        if self.verify_tls:
            return self.tls
        return (self.tls or TlsSettings()).model_copy(update={"verify": False})
