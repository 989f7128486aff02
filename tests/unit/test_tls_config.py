"""The `tls:` block: checked at config load (files, pairs, PEM), refused where a client cannot honour it;
the expiry read from a certificate and the one-line TLS errors."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.core.rules import RuleSet
from hulk_ops.probes import tls
from tests.tls_certs import Pki, make_pki

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _config(target: dict) -> str:
    return yaml.safe_dump({"targets": [{"name": "cache", "interval_s": 10, **target}]})


def _load(target: dict):
    return parse_config(_config(target), "hulk.yaml").targets[0]


def test_a_full_block_loads(pki: Pki):
    target = _load({"kind": "redis", "url": "rediss://127.0.0.1:6380",
                    "tls": {"ca_file": pki.ca, "cert_file": pki.pem("client"), "key_file": pki.key("client"),
                            "server_name": "localhost"}})
    assert target.tls.ca_file == pki.ca
    assert target.tls.verify is True


@pytest.mark.parametrize(("tls_block", "words"), [
    ({"ca_file": "/nonexistent/ca.pem"}, "tls.ca_file: /nonexistent/ca.pem: no such file"),
    ({"ca_file": "{dir}"}, "tls.ca_file: {dir}: not a file"),
    ({"cert_file": "{client}"}, "tls: cert_file and key_file come together (key_file is missing)"),
    ({"key_file": "{client_key}"}, "tls: cert_file and key_file come together (cert_file is missing)"),
    ({"ca_file": "{client_key}"}, "tls: ca_file: {client_key}: not a PEM CA bundle"),
    ({"cert_file": "{client}", "key_file": "{server_key}"}, "cannot be loaded (KEY_VALUES_MISMATCH)"),
    ({"server_name": "not a host"}, "tls.server_name: String should match pattern"),
    ({"verify": "maybe"}, "tls.verify: Input should be a valid boolean"),
    ({"ciphers": "ALL"}, "tls.ciphers: unknown field"),
])
def test_mistakes_name_the_target_and_field(pki: Pki, tls_block: dict, words: str):
    values = {"dir": str(pki.dir), "client": pki.pem("client"), "client_key": pki.key("client"),
              "server_key": pki.key("server")}
    block = {k: v.format(**values) if isinstance(v, str) else v for k, v in tls_block.items()}
    with pytest.raises(ConfigError) as caught:
        _load({"kind": "redis", "url": "rediss://127.0.0.1:6380", "tls": block})
    message = str(caught.value)
    assert message.startswith("hulk.yaml: target 'cache' (targets[0]): ")
    assert words.format(**values) in message
    assert "BEGIN" not in message  # paths only, never what a file holds


def test_an_unreadable_file_is_refused(pki: Pki, tmp_path: Path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    locked = tmp_path / "ca.pem"
    locked.write_bytes(Path(pki.ca).read_bytes())
    locked.chmod(0)
    with pytest.raises(ConfigError, match="not readable"):
        _load({"kind": "redis", "url": "rediss://h:1", "tls": {"ca_file": str(locked)}})


def test_kinds_without_tls_refuse_the_block(pki: Pki):
    with pytest.raises(ConfigError, match=r"target 'cache' \(targets\[0\]\): tls: unknown field"):
        _load({"kind": "tcp", "url": "127.0.0.1:1", "tls": {"ca_file": pki.ca}})


@pytest.mark.parametrize("kind,url", [("postgres", "postgresql://u@127.0.0.1/db"),
                                      ("neo4j", "bolt://127.0.0.1:7687"),
                                      ("qdrant", "https://127.0.0.1:6333")])
def test_server_name_is_refused_where_the_client_cannot_send_it(kind: str, url: str):
    with pytest.raises(ConfigError, match=f"tls.server_name: not supported for kind {kind}"):
        _load({"kind": kind, "url": url, "tls": {"server_name": "db.internal"}})


@pytest.mark.parametrize("kind", ["http", "prometheus", "qdrant"])
def test_a_tls_block_needs_an_https_url(kind: str, pki: Pki):
    with pytest.raises(ConfigError, match="tls: needs an https:// url"):
        _load({"kind": kind, "url": "http://127.0.0.1:1", "tls": {"ca_file": pki.ca}})


@pytest.mark.parametrize("kind", ["http", "prometheus"])
def test_verify_tls_false_stays_an_alias(kind: str, pki: Pki):
    target = _load({"kind": kind, "url": "https://127.0.0.1:1", "verify_tls": False})
    assert target.tls_options().verify is False
    both = _load({"kind": kind, "url": "https://127.0.0.1:1", "verify_tls": False, "tls": {"ca_file": pki.ca}})
    assert (both.tls_options().verify, both.tls_options().ca_file) == (False, pki.ca)
    assert _load({"kind": kind, "url": "https://127.0.0.1:1"}).tls_options() is None


def test_not_after_reads_the_certificate(pki: Pki):
    for name, days in (("server", 365), ("expiring", 3), ("expired", -1)):
        der = ssl.PEM_cert_to_DER_cert(Path(pki.pem(name)).read_text())
        left = (tls.not_after(der) - datetime.now(UTC)) / timedelta(days=1)
        assert abs(left - days) < 0.01, name
    metrics = tls.cert_metrics(ssl.PEM_cert_to_DER_cert(Path(pki.pem("expired")).read_text()))
    assert metrics[tls.EXPIRED] is True and -1.01 < metrics[tls.EXPIRY_DAYS] < -0.99


def test_the_metrics_have_catalog_entries():
    from hulk_ops.core.catalog import Catalog

    catalog = Catalog(tls.METRICS)
    assert catalog.lookup(tls.EXPIRY_DAYS)[0].prom == "tls_cert_expiry_days"
    assert catalog.outside([tls.EXPIRY_DAYS, tls.EXPIRED]) == []


def test_default_rules_degrade_under_14_days_and_down_when_expired():
    from hulk_ops.core.model import ProbeResult

    rules = RuleSet.for_target("redis", [], [])

    def status(days: float) -> str:
        result = ProbeResult(target="t", kind="redis", status="up", latency_ms=1.0, version=None,
                             metrics={tls.EXPIRY_DAYS: days, tls.EXPIRED: days <= 0},
                             error=None, observed_at="2026-01-01T00:00:00Z")
        return rules.evaluate(result).status

    assert [status(d) for d in (200, 13.9, -0.5)] == ["up", "degraded", "down"]
    assert RuleSet.for_target("redis", [], ["tls.cert_expiry_days < 30"]).rules  # the threshold is a rule


def test_describe_names_the_server_and_ca_file(pki: Pki):
    from hulk_ops.core.tls_config import TlsSettings

    options = TlsSettings(ca_file=pki.ca)
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    assert tls.describe([verify], "redis.internal:6380", options) == (
        f"certificate verify failed: unable to get local issuer certificate (redis.internal:6380, ca_file={pki.ca})")
    text = ConnectionError("Error connecting to 127.0.0.1:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                           "verify failed: certificate has expired (_ssl.c:1006).")
    assert tls.describe([text], "h:1", None) == "certificate verify failed: certificate has expired (h:1)"
    required = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    required.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert "the server requires a client certificate" in tls.describe([required], "h:1", options)
    assert tls.describe([OSError("nope")], "h:1", options) is None


def test_config_check_refuses_a_missing_file_and_accepts_the_fixed_one(pki: Pki, tmp_path: Path, capsys):
    from hulk_ops.entrypoints.cli import main

    path = tmp_path / "hulk.yaml"
    target = {"name": "cache", "kind": "redis", "url": "rediss://127.0.0.1:6380",
              "tls": {"ca_file": str(tmp_path / "gone.pem")}}
    path.write_text(yaml.safe_dump({"targets": [target]}))
    assert main(["config", "check", str(path)]) == 2
    assert f"target 'cache' (targets[0]): tls.ca_file: {tmp_path / 'gone.pem'}: no such file" in capsys.readouterr().err
    target["tls"] = {"ca_file": pki.ca}
    path.write_text(yaml.safe_dump({"targets": [target]}))
    assert main(["config", "check", str(path)]) == 0


async def test_a_certificate_read_apart_is_kept_for_an_hour_and_a_failed_read_leaves_it_out():
    watch = tls.CertWatch()
    reads: list[str] = []

    async def fails() -> bytes | None:
        reads.append("fail")
        raise ConnectionRefusedError(111, "refused")

    async def works() -> bytes | None:
        reads.append("ok")
        return b"der"

    assert await watch.get(fails) is None
    assert await watch.get(works) == b"der"  # a failed read is retried the next cycle
    assert await watch.get(works) == b"der"
    assert reads == ["fail", "ok"]  # then kept for REFRESH_S


def test_relative_paths_are_relative_to_the_config_file(pki: Pki, tmp_path: Path):
    from hulk_ops.core.config import load_config

    path = pki.dir / "hulk.yaml"
    path.write_text(_config({"kind": "nats", "url": "tls://127.0.0.1:4222",
                             "tls": {"ca_file": "ca.pem", "cert_file": "client.pem", "key_file": "client.key"}}))
    target = load_config(path).targets[0]
    assert (target.tls.ca_file, target.tls.key_file) == (pki.ca, pki.key("client"))
    elsewhere = tmp_path / "hulk.yaml"
    elsewhere.write_text(path.read_text())
    with pytest.raises(ConfigError, match=f"tls.ca_file: {tmp_path / 'ca.pem'}: no such file"):
        load_config(elsewhere)
