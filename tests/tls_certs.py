"""Certificates for the TLS tests, made with the openssl CLI in a directory of the test's own.

`make_pki(dir)` writes a CA, a second (wrong) CA, and certificates signed by them: `server` (localhost and
127.0.0.1, a year), `expiring` (3 days), `expired` (ended yesterday), `wrong` (a server certificate of the
other CA) and `client` (clientAuth). Each is `<name>.pem` with `<name>.key`; keys are P-256 (fast to make).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SERVER_SANS = "DNS:localhost,IP:127.0.0.1"


@dataclass(frozen=True)
class Pki:
    dir: Path

    def pem(self, name: str) -> str:
        return str(self.dir / f"{name}.pem")

    def key(self, name: str) -> str:
        return str(self.dir / f"{name}.key")

    @property
    def ca(self) -> str:
        return self.pem("ca")


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[:500]}")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%SZ")


def _ca(out: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "30", "-subj", f"/CN=hulk-ops test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=out)
    (out / f"{name}.db").mkdir(exist_ok=True)
    (out / f"{name}.db" / "index.txt").write_text("")
    (out / f"{name}.db" / "serial").write_text("1000\n")
    (out / f"{name}.cnf").write_text(
        "[ca]\ndefault_ca = this\n[this]\n"
        f"database = {name}.db/index.txt\nnew_certs_dir = {name}.db\nserial = {name}.db/serial\n"
        "default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n")


def _leaf(out: Path, ca: str, name: str, start: datetime, end: datetime, usage: str, sans: str | None) -> None:
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=out)
    ext = [f"extendedKeyUsage={usage}", "basicConstraints=CA:FALSE"] + ([f"subjectAltName={sans}"] if sans else [])
    (out / f"{name}.ext").write_text("[leaf]\n" + "\n".join(ext) + "\n")
    _openssl("ca", "-batch", "-notext", "-config", f"{ca}.cnf", "-cert", f"{ca}.pem", "-keyfile", f"{ca}.key",
             "-in", f"{name}.csr", "-out", f"{name}.pem", "-startdate", _stamp(start), "-enddate", _stamp(end),
             "-extfile", f"{name}.ext", "-extensions", "leaf", cwd=out)
    (out / f"{name}.key").chmod(0o600)


def make_pki(out: Path) -> Pki:
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    before = now - timedelta(days=1)
    _ca(out, "ca")
    _ca(out, "other-ca")
    _leaf(out, "ca", "server", before, now + timedelta(days=365), "serverAuth", SERVER_SANS)
    _leaf(out, "ca", "expiring", before, now + timedelta(days=3), "serverAuth", SERVER_SANS)
    _leaf(out, "ca", "expired", now - timedelta(days=10), now - timedelta(days=1), "serverAuth", SERVER_SANS)
    _leaf(out, "other-ca", "wrong", before, now + timedelta(days=365), "serverAuth", SERVER_SANS)
    _leaf(out, "ca", "client", before, now + timedelta(days=365), "clientAuth", None)
    return Pki(out)
