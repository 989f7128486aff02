"""TLS and mTLS against real TLS servers started here on loopback, with certificates made by the openssl CLI:
Debian's redis-server (--tls-port), nats-server (a tls block), a private PostgreSQL (ssl=on), Prometheus
(--web.config.file) and an aiohttp server for the http kind. Each kind: up with the right CA and the expiry
metric, down on the wrong CA with a one-line error, mTLS required and refused without a client certificate,
degraded under 14 days."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from aiohttp import web

from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints.probe_once import probe_once
from sandbox.services import find_binary, free_port, stop_process, wait_port
from tests.tls_certs import Pki, make_pki

YEAR = 365


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def check(target: dict[str, Any]):
    config = parse_config(yaml.safe_dump({"targets": [{"name": "t", "interval_s": 10, "timeout_s": 5, **target}]}))
    [result] = await probe_once(config, config.targets)
    return result


def client(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {"ca_file": pki.ca, "cert_file": pki.pem("client"), "key_file": pki.key("client"), **extra}


def assert_expiry(result, days: float) -> None:
    assert abs(result.metrics["tls.cert_expiry_days"] - days) < 0.05, result.metrics
    assert result.metrics["tls.cert_expired"] == 0


def assert_wrong_ca(result, port: int, ca_file: str) -> None:
    # a server that sends its CA along (OpenSSL builds the chain from its client-CA store) gets "self-signed
    # certificate in certificate chain" instead of "unable to get local issuer certificate"
    assert result.status == "down"
    reasons = ("unable to get local issuer certificate", "self-signed certificate in certificate chain")
    assert result.error in [f"certificate verify failed: {r} (127.0.0.1:{port}, ca_file={ca_file})" for r in reasons], \
        result.error


def _spawn(argv: list[str], port: int, what: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        wait_port(port, 30, proc, what)
    except BaseException:
        stop_process(proc)
        raise
    return proc


# -- redis --------------------------------------------------------------------------------------

@pytest.fixture
def redis_tls(pki: Pki, tmp_path: Path) -> Iterator[Any]:
    """redis_tls(cert="server", clients=False) -> port of a private redis-server speaking only TLS."""
    binary = find_binary("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    started: list[subprocess.Popen[bytes]] = []

    def start(cert: str = "server", clients: bool = False) -> int:
        port = free_port()
        started.append(_spawn([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                               "--tls-cert-file", pki.pem(cert), "--tls-key-file", pki.key(cert),
                               "--tls-ca-cert-file", pki.ca, "--tls-auth-clients", "yes" if clients else "no",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              port, "redis-server", tmp_path / f"redis-{port}.log"))
        return port

    yield start
    for proc in started:
        stop_process(proc)


async def test_redis_up_with_the_right_ca_and_its_expiry(pki: Pki, redis_tls) -> None:
    port = redis_tls()
    result = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"ca_file": pki.ca}})
    assert result.status == "up", result.error
    assert_expiry(result, YEAR)
    assert "used_memory_bytes" in result.metrics
    named = await check({"kind": "redis", "url": f"redis://127.0.0.1:{port}",  # the block turns TLS on
                         "tls": {"ca_file": pki.ca, "server_name": "localhost"}})
    assert named.status == "up", named.error


async def test_redis_down_on_the_wrong_ca_or_name(pki: Pki, redis_tls) -> None:
    port = redis_tls("wrong")
    result = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"ca_file": pki.ca}})
    assert_wrong_ca(result, port, pki.ca)
    port = redis_tls()
    misnamed = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}",
                            "tls": {"ca_file": pki.ca, "server_name": "cache.internal"}})
    assert misnamed.status == "down"
    assert misnamed.error.startswith("certificate verify failed: Hostname mismatch"), misnamed.error
    assert "cache.internal" in misnamed.error


async def test_redis_mtls_required(pki: Pki, redis_tls) -> None:
    port = redis_tls(clients=True)
    url = f"rediss://127.0.0.1:{port}"
    refused = await check({"kind": "redis", "url": url, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    # the server's alert, or (when the reset overtakes it) the hint on the dropped connection
    assert refused.error in [f"TLS handshake refused: the server requires a client certificate (tls.cert_file, "
                             f"tls.key_file) (127.0.0.1:{port})",
                             f"connection reset by peer (127.0.0.1:{port}): the server may require a client "
                             f"certificate (tls.cert_file, tls.key_file)"], refused.error
    strange = await check({"kind": "redis", "url": url, "tls": client(pki, cert_file=pki.pem("wrong"),
                                                                       key_file=pki.key("wrong"))})
    assert strange.status == "down"
    assert strange.error in [f"TLS handshake refused: the server does not accept the client certificate "
                             f"(tlsv1_alert_unknown_ca) (127.0.0.1:{port}, cert_file={pki.pem('wrong')})",
                             f"connection reset by peer (127.0.0.1:{port}): the server may not accept the client "
                             f"certificate (cert_file={pki.pem('wrong')})"], strange.error
    accepted = await check({"kind": "redis", "url": url, "tls": client(pki)})
    assert accepted.status == "up", accepted.error
    assert_expiry(accepted, YEAR)


async def test_redis_degraded_under_14_days_and_expired_is_down(pki: Pki, redis_tls) -> None:
    port = redis_tls("expiring")
    result = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"ca_file": pki.ca}})
    assert result.status == "degraded"
    assert_expiry(result, 3)
    assert "tls.cert_expiry_days = 3" in result.error
    relaxed = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"ca_file": pki.ca},
                           "rules": ["tls.cert_expiry_days < 2"]})
    assert relaxed.status == "up", relaxed.error
    port = redis_tls("expired")
    verified = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"ca_file": pki.ca}})
    assert verified.status == "down"
    assert verified.error.startswith("certificate verify failed: certificate has expired"), verified.error
    unverified = await check({"kind": "redis", "url": f"rediss://127.0.0.1:{port}", "tls": {"verify": False}})
    assert unverified.status == "down"
    assert "tls.cert_expired = 1" in unverified.error
    assert -1.05 < unverified.metrics["tls.cert_expiry_days"] < -0.95


# -- http ---------------------------------------------------------------------------------------

async def _https(pki: Pki, cert: str = "server", clients: bool = False) -> tuple[web.AppRunner, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.pem(cert), pki.key(cert))
    if clients:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    return runner, runner.addresses[0][1]


async def test_http_tls_and_mtls(pki: Pki) -> None:
    runner, port = await _https(pki, clients=True)
    url = f"https://127.0.0.1:{port}/"
    try:
        up = await check({"kind": "http", "url": url, "tls": client(pki)})
        named = await check({"kind": "http", "url": f"https://localhost:{port}/",
                             "tls": client(pki, server_name="localhost")})
        refused = await check({"kind": "http", "url": url, "tls": {"ca_file": pki.ca}})
        wrong = await check({"kind": "http", "url": url, "tls": client(pki, ca_file=pki.pem("other-ca"))})
    finally:
        await runner.cleanup()
    assert up.status == "up", up.error
    assert_expiry(up, YEAR)
    assert named.status == "up", named.error
    assert refused.status == "down"
    assert "require a client certificate" in refused.error, refused.error
    assert wrong.status == "down"
    assert_wrong_ca(wrong, port, pki.pem("other-ca"))


async def test_http_expiring_certificate_degrades(pki: Pki) -> None:
    runner, port = await _https(pki, "expiring")
    try:
        result = await check({"kind": "http", "url": f"https://127.0.0.1:{port}/", "tls": {"ca_file": pki.ca}})
        alias = await check({"kind": "http", "url": f"https://127.0.0.1:{port}/", "verify_tls": False})
    finally:
        await runner.cleanup()
    assert result.status == "degraded"
    assert_expiry(result, 3)
    assert alias.status == "degraded"  # verify_tls: false still reads the certificate
    assert_expiry(alias, 3)


# -- nats ---------------------------------------------------------------------------------------

@pytest.fixture
def nats_tls(pki: Pki, tmp_path: Path) -> Iterator[Any]:
    binary = find_binary("nats-server")
    if binary is None:
        pytest.skip("nats-server not installed")
    started: list[subprocess.Popen[bytes]] = []

    def start(cert: str = "server", clients: bool = False) -> int:
        port = free_port()
        conf = tmp_path / f"nats-{port}.conf"
        conf.write_text(f"listen: 127.0.0.1:{port}\n"
                        f"tls {{\n  cert_file: {pki.pem(cert)!r}\n  key_file: {pki.key(cert)!r}\n"
                        f"  ca_file: {pki.ca!r}\n  verify: {'true' if clients else 'false'}\n  timeout: 2\n}}\n")
        started.append(_spawn([binary, "-c", str(conf)], port, "nats-server", tmp_path / f"nats-{port}.log"))
        return port

    yield start
    for proc in started:
        stop_process(proc)


async def test_nats_tls_and_mtls(pki: Pki, nats_tls) -> None:
    port = nats_tls(clients=True)
    base = {"kind": "nats", "url": f"tls://127.0.0.1:{port}", "expect_jetstream": False}
    up = await check({**base, "tls": client(pki)})
    assert up.status == "up", up.error
    assert_expiry(up, YEAR)
    refused = await check({**base, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    assert "client certificate" in refused.error, refused.error
    wrong = await check({**base, "tls": client(pki, ca_file=pki.pem("other-ca"))})
    assert_wrong_ca(wrong, port, pki.pem("other-ca"))


async def test_nats_expiring_certificate_degrades(pki: Pki, nats_tls) -> None:
    port = nats_tls("expiring")
    result = await check({"kind": "nats", "url": f"nats://127.0.0.1:{port}", "expect_jetstream": False,
                          "tls": {"ca_file": pki.ca, "server_name": "localhost"}})
    assert result.status == "degraded"
    assert_expiry(result, 3)


# -- postgres -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres_tls(pki: Pki) -> Iterator[int]:
    """A private PostgreSQL with ssl=on: user postgres over TLS, user mtls only with a client certificate."""
    initdb = find_binary("initdb")
    if initdb is None:
        pytest.skip("PostgreSQL (initdb) not installed")
    data = Path(tempfile.mkdtemp(prefix="hulk-pg-tls-"))
    data.chmod(0o755)
    as_user: list[str] = []
    for name in ("server.pem", "server.key", "ca.pem"):
        shutil.copy(pki.dir / name, data / name)
    (data / "server.key").chmod(0o600)
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        for path in (data, data / "server.pem", data / "server.key", data / "ca.pem"):
            shutil.chown(path, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    pgdata = data / "data"
    subprocess.run([*as_user, initdb, "-D", str(pgdata), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    (pgdata / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all mtls 127.0.0.1/32 trust clientcert=verify-ca\n"
        "hostssl all all 127.0.0.1/32 trust\n")
    port = free_port()
    proc = _spawn([*as_user, str(Path(initdb).with_name("postgres")), "-D", str(pgdata), "-p", str(port),
                   "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}", "-c", "fsync=off",
                   "-c", "ssl=on", "-c", f"ssl_cert_file={data / 'server.pem'}",
                   "-c", f"ssl_key_file={data / 'server.key'}", "-c", f"ssl_ca_file={data / 'ca.pem'}"],
                  port, "postgres", data / "postgres.log")
    try:
        asyncio.run(_create_role(port))
        yield port
    finally:
        stop_process(proc)
        shutil.rmtree(data, ignore_errors=True)


async def _create_role(port: int) -> None:
    for _ in range(100):  # the port opens before the server accepts logins
        try:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", ssl="require")
            break
        except asyncpg.CannotConnectNowError:
            await asyncio.sleep(0.1)
    try:
        await conn.execute("CREATE ROLE mtls LOGIN")
    finally:
        await conn.close()


async def test_postgres_tls_and_mtls(pki: Pki, postgres_tls: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{postgres_tls}/postgres"
    up = await check({"kind": "postgres", "url": url, "tls": {"ca_file": pki.ca}})
    assert up.status == "up", up.error
    assert_expiry(up, YEAR)
    wrong = await check({"kind": "postgres", "url": url, "tls": {"ca_file": pki.pem("other-ca")}})
    assert_wrong_ca(wrong, postgres_tls, pki.pem("other-ca"))
    mtls_url = f"postgresql://mtls@127.0.0.1:{postgres_tls}/postgres"
    refused = await check({"kind": "postgres", "url": mtls_url, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    assert "certificate" in refused.error, refused.error
    accepted = await check({"kind": "postgres", "url": mtls_url, "tls": client(pki)})
    assert accepted.status == "up", accepted.error


# -- prometheus ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus_tls(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Prometheus serving only HTTPS and asking for a client certificate (--web.config.file)."""
    binary = find_binary("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed")
    data = tmp_path_factory.mktemp("prometheus-tls")
    (data / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    (data / "web.yml").write_text(yaml.safe_dump({"tls_server_config": {
        "cert_file": pki.pem("expiring"), "key_file": pki.key("expiring"),
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": pki.ca}}))
    port = free_port()
    proc = _spawn([binary, f"--config.file={data / 'prometheus.yml'}", f"--storage.tsdb.path={data / 'tsdb'}",
                   f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={data / 'web.yml'}",
                   "--log.level=warn"], port, "prometheus", data / "prometheus.log")
    try:
        yield port
    finally:
        stop_process(proc)


async def test_prometheus_mtls_and_expiry(pki: Pki, prometheus_tls: int) -> None:
    url = f"https://127.0.0.1:{prometheus_tls}"
    result = None
    for _ in range(50):  # the port opens before the API answers
        result = await check({"kind": "prometheus", "url": url, "tls": client(pki)})
        if result.status != "down":
            break
        await asyncio.sleep(0.2)
    assert result.status == "degraded", result.error
    assert_expiry(result, 3)
    named = await check({"kind": "prometheus", "url": f"https://localhost:{prometheus_tls}",
                         "tls": client(pki, server_name="localhost")})
    assert named.status == "degraded", named.error
    refused = await check({"kind": "prometheus", "url": url, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    assert "client certificate" in refused.error, refused.error
    wrong = await check({"kind": "prometheus", "url": url, "tls": client(pki, ca_file=pki.pem("other-ca"))})
    assert_wrong_ca(wrong, prometheus_tls, pki.pem("other-ca"))


# -- qdrant and neo4j (their simulators, listening with TLS) ------------------------------------

def _server_context(pki: Pki, cert: str, clients: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.pem(cert), pki.key(cert))
    if clients:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    return context


@pytest.fixture
def tls_sim(pki: Pki) -> Iterator[Any]:
    """tls_sim(Simulator, cert="server", clients=False) -> a started simulator listening with TLS."""
    started: list[Any] = []

    def start(cls: type, cert: str = "server", clients: bool = False) -> Any:
        sim = cls()
        sim.ssl_context = _server_context(pki, cert, clients)
        started.append(sim.start())
        return sim

    yield start
    for sim in started:
        sim.stop()


async def test_qdrant_tls_and_mtls(pki: Pki, tls_sim) -> None:
    from sandbox.qdrant_sim import QdrantSimulator

    sim = tls_sim(QdrantSimulator, clients=True)
    url = f"https://127.0.0.1:{sim.port}"
    up = await check({"kind": "qdrant", "url": url, "tls": client(pki)})
    assert up.status == "up", up.error
    assert_expiry(up, YEAR)
    assert up.metrics["collections"] > 0
    refused = await check({"kind": "qdrant", "url": url, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    assert "client certificate" in refused.error, refused.error
    other = await check({"kind": "qdrant", "url": url, "tls": {"ca_file": pki.ca, "cert_file": pki.pem("wrong"),
                                                                "key_file": pki.key("wrong")}})
    assert other.status == "down"
    assert other.error in [f"connection {how} by peer (127.0.0.1:{sim.port}): the server may not accept the client "
                           f"certificate (cert_file={pki.pem('wrong')})" for how in ("closed", "reset")], other.error
    wrong = await check({"kind": "qdrant", "url": url, "tls": client(pki, ca_file=pki.pem("other-ca"))})
    assert_wrong_ca(wrong, sim.port, pki.pem("other-ca"))
    expiring = tls_sim(QdrantSimulator, "expiring")
    degraded = await check({"kind": "qdrant", "url": f"https://127.0.0.1:{expiring.port}", "tls": {"ca_file": pki.ca}})
    assert degraded.status == "degraded"
    assert_expiry(degraded, 3)


async def test_neo4j_tls_and_mtls(pki: Pki, tls_sim) -> None:
    from sandbox.neo4j_sim import DEFAULT_PASSWORD, DEFAULT_USER, Neo4jSimulator

    sim = tls_sim(Neo4jSimulator, clients=True)
    base = {"kind": "neo4j", "url": f"bolt://127.0.0.1:{sim.port}", "username": DEFAULT_USER,
            "password": DEFAULT_PASSWORD}
    up = await check({**base, "tls": client(pki)})
    assert up.status == "up", up.error
    assert_expiry(up, YEAR)
    refused = await check({**base, "tls": {"ca_file": pki.ca}})
    assert refused.status == "down"
    assert "client certificate" in refused.error, refused.error
    wrong = await check({**base, "tls": client(pki, ca_file=pki.pem("other-ca"))})
    assert_wrong_ca(wrong, sim.port, pki.pem("other-ca"))
    expiring = tls_sim(Neo4jSimulator, "expiring")
    degraded = await check({**base, "url": f"bolt+s://localhost:{expiring.port}", "tls": {"ca_file": pki.ca}})
    assert degraded.status == "degraded", degraded.error
    assert_expiry(degraded, 3)
