"""Kubernetes target settings: every credential mode accepted, every mistake named by file, target and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.probes import registry


def parse(**fields):
    return parse_config(yaml.safe_dump({"targets": [{"name": "k", "kind": "kubernetes", **fields}]}), "k.yaml")


@pytest.mark.parametrize("fields", [
    {"url": "https://10.0.0.1:6443", "token": "t"},
    {"url": "http://127.0.0.1:8001"},  # kubectl proxy: no token
    {"kubeconfig": "~/.kube/config", "context": "prod"},
    {"kubeconfig": "/etc/k.yaml", "url": "https://override:6443"},
    {"in_cluster": True},
    {"in_cluster": True, "url": "https://kubernetes.default.svc"},
    {"url": "https://x", "token": "t", "namespaces": ["hulk-prod", "ml"], "verify_tls": False, "ca_file": "/ca"},
])
def test_accepted(fields) -> None:
    [target] = parse(**fields).targets
    assert target.kind == "kubernetes"


@pytest.mark.parametrize("fields,message", [
    ({}, "url: field required (or set kubeconfig, or in_cluster: true)"),
    ({"url": "10.0.0.1:6443"}, "url: must start with https://"),
    ({"kubeconfig": "/k", "in_cluster": True}, "kubeconfig: cannot be combined with in_cluster"),
    ({"kubeconfig": "/k", "token": "secret"}, "token: only with url"),
    ({"url": "https://x", "context": "prod"}, "context: needs kubeconfig"),
    ({"url": "https://x", "namespaces": ["Hulk_Prod"]}, "namespaces: 'Hulk_Prod' is not a namespace"),
    ({"url": "https://x", "verify_tls": "maybe"}, "verify_tls: Input should be a valid boolean"),
    ({"url": "https://x", "max_events": -1}, "max_events: Input should be greater than or equal to 0"),
    ({"url": "https://x", "tokn": "t"}, "tokn: unknown field"),
])
def test_rejected_with_file_target_and_field(fields, message) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**fields)
    text = str(caught.value)
    assert text.startswith("k.yaml: target 'k' (targets[0]): ")
    assert message in text
    assert "secret" not in text


def test_registered_with_rules_and_tracked_metrics() -> None:
    assert registry.entries()["kubernetes"].module == "hulk_ops.probes.kubernetes"
    assert "deployments_short > 0" in registry.default_rules("kubernetes")
    assert "pods_crashloop > 0" in registry.default_rules("kubernetes")
    assert {"ns.*", "node.*", "gpu_requests"} <= set(registry.tracked_metrics("kubernetes"))


def test_cli_config_check_rejects_a_bad_kubernetes_target(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"targets": [
        {"name": "prod", "kind": "kubernetes", "url": "https://10.0.0.1:6443", "token": "t"},
        {"name": "gpu", "kind": "kubernetes", "kubeconfig": "/k", "in_cluster": True}]}))
    failed = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert f"{bad}: target 'gpu' (targets[1]): kubeconfig: cannot be combined with in_cluster" in failed.stderr
    assert "Traceback" not in failed.stderr
