"""deploy/proxy/nginx.conf, as docs/deployment-security.md prints it, in Debian's nginx in front of a real
dashboard: TLS, and the WebSocket opens only from the dashboard's own origin (or without an Origin), while a
foreign origin, including another port on the same host that Streamlit alone accepts, gets 403."""

from __future__ import annotations

import datetime
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sandbox.services import find_binary, free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
SITE = "ops.example.com"


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def proxied(write_config, tmp_path: Path):
    nginx = find_binary("nginx")
    if nginx is None:
        pytest.fail("nginx missing: `make test` installs Debian's nginx-light (python -m sandbox.services install "
                    "--with nginx)")
    port = free_port()
    with open(tmp_path / "dashboard.log", "wb") as log:
        dashboard = subprocess.Popen([sys.executable, "-m", "hulk_ops", "dashboard", "--config",
                                      str(write_config([])), "--port", str(port)], stdout=log, stderr=log,
                                     start_new_session=True)
    procs = [dashboard]
    try:
        wait_port(port, 90, dashboard, "dashboard")
        cert, key = self_signed(tmp_path)
        tls_port, http_port = free_port(), free_port()
        site = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text(encoding="utf-8")
        for old, new in (("server 127.0.0.1:8501;", f"server 127.0.0.1:{port};"),
                         ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;"),
                         ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                         ("/etc/ssl/hulk-ops/fullchain.pem", str(cert)), ("/etc/ssl/hulk-ops/privkey.pem", str(key))):
            assert old in site, old
            site = site.replace(old, new)
        (tmp_path / "site.conf").write_text(site, encoding="utf-8")
        temp = tmp_path / "nginx-temp"
        temp.mkdir()
        (tmp_path / "nginx.conf").write_text(f"""
daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/site.conf;
}}
""", encoding="utf-8")
        proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nginx.out", "wb"),
                                 start_new_session=True)
        procs.append(proxy)
        wait_port(tls_port, 30, proxy, "nginx")
        yield tls_port, http_port, port
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def connect(tls_port: int, origin: str | None):
    import websocket

    options = {"sslopt": {"cert_reqs": ssl.CERT_NONE, "server_hostname": SITE}, "host": SITE, "timeout": 20}
    if origin is None:
        return websocket.create_connection(f"wss://127.0.0.1:{tls_port}/_stcore/stream", suppress_origin=True,
                                           **options)
    return websocket.create_connection(f"wss://127.0.0.1:{tls_port}/_stcore/stream", origin=origin, **options)


def test_the_proxy_lets_only_the_dashboards_own_origin_open_the_websocket(proxied) -> None:
    import websocket

    tls_port, http_port, dashboard_port = proxied
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(f"https://127.0.0.1:{tls_port}/", headers={"Host": SITE})
    with urllib.request.urlopen(request, context=unverified, timeout=30) as page:
        assert page.status == 200 and b"<div id=\"root\">" in page.read()
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"

    connect(tls_port, f"https://{SITE}").close()
    connect(tls_port, None).close()  # not a browser page: nothing to forge
    for foreign in ("https://evil.example", f"http://{SITE}", f"https://{SITE}:8443", "http://127.0.0.1:1"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(tls_port, foreign)
        assert refused.value.status_code == 403, foreign

    # the gap the proxy closes: straight to Streamlit, another port on an allowed host gets in
    websocket.create_connection(f"ws://127.0.0.1:{dashboard_port}/_stcore/stream", origin="http://127.0.0.1:1",
                                timeout=20).close()

    plain = urllib.request.Request(f"http://127.0.0.1:{http_port}/overview", headers={"Host": SITE})
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(plain, timeout=30)
    assert moved.value.code == 301 and moved.value.headers["Location"] == f"https://{SITE}/overview"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
