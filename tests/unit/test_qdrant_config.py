"""Qdrant target settings, default rules and metric extraction (no servers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qdrant_client.http import models

from hulk_ops.core.config import parse_config
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.rules import RuleSet
from hulk_ops.entrypoints import cli
from hulk_ops.probes import registry
from hulk_ops.probes.qdrant import cluster_metrics, collection_details, collection_metrics
from sandbox.qdrant_data import SimCollection, cluster_status

GOOD = "targets:\n  - name: vec\n    kind: qdrant\n    url: http://qdrant.internal:6333\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hulk-ops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_kind_is_registered_with_tracked_metrics():
    assert registry.entries()["qdrant"].module == "hulk_ops.probes.qdrant"
    assert "collection.*.points" in registry.tracked_metrics("qdrant")


def test_valid_config_passes_check(tmp_path, capsys):
    path = write(tmp_path, GOOD + "    api_key: ${QDRANT_KEY:-dev-key}\n    collections: [docs-embeddings]\n")

    assert cli.main(["config", "check", str(path)]) == 0
    assert "OK, 1 targets (qdrant)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("    kind: qdrant\n", "url: field required"),
        ("    kind: qdrant\n    url: http://q:6333\n    timeout_s: -1\n", "timeout_s: Input should be greater than 0"),
        ("    kind: qdrant\n    url: http://q:6333\n    colections: [a]\n", "colections: unknown field"),
        ("    kind: qdrant\n    url: q:6333\n", "url: must be the REST API's http:// or https:// URL"),
        ("    kind: qdrant\n    url: http://q:6333\n    max_collections: 0\n", "max_collections: Input should be"),
        ("    kind: qdrant\n    url: http://q:6333\n    rules: ['ready <']\n", "rules: bad rule"),
    ],
)
def test_bad_target_is_rejected_naming_file_target_and_field(tmp_path, capsys, target, expected):
    path = write(tmp_path, "targets:\n  - name: vec\n" + target)

    code = cli.main(["config", "check", str(path)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}: target 'vec' (targets[0]): {expected}" in err


def test_config_check_exit_code_from_the_command_line(tmp_path):
    path = write(tmp_path, "targets:\n  - name: vec\n    kind: qdrant\n")

    proc = subprocess.run([sys.executable, "-m", "hulk_ops", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2
    assert f"{path}: target 'vec' (targets[0]): url: field required" in proc.stderr


def test_api_key_is_a_secret(tmp_path):
    config = parse_config(GOOD + "    api_key: ${QDRANT_KEY}\n", environ={"QDRANT_KEY": "k-123"})
    target = config.targets[0]

    assert "k-123" in config.secrets()
    assert "k-123" not in repr(target)


def _info(coll: SimCollection) -> models.CollectionInfo:
    return models.CollectionInfo.model_validate(coll.info())


def test_collection_metrics_and_details_from_collection_info():
    coll = SimCollection("docs", vector_size=768, points=1000, indexed=900, segments=3,
                         payload_schema={"tenant": "keyword"})
    coll.set_status("red", "Service internal error: disk full")

    metrics = collection_metrics("docs", _info(coll))
    details = collection_details("docs", _info(coll))

    assert metrics == {
        "collection.docs.status_code": 2,
        "collection.docs.points": 1000,
        "collection.docs.indexed_vectors": 900,
        "collection.docs.segments": 3,
        "collection.docs.optimizations_pending": False,
        "collection.docs.vector_size": 768,
    }
    assert details == {"name": "docs", "status": "red", "optimizer_error": "Service internal error: disk full",
                       "vectors": {"size": 768, "distance": "Cosine"}, "payload_indexes": ["tenant"]}


@pytest.mark.parametrize(("status", "code"), [("green", 0), ("grey", 0), ("yellow", 1), ("red", 2)])
def test_status_codes(status, code):
    coll = SimCollection("c", vector_size=4)
    coll.set_status(status)
    assert collection_metrics("c", _info(coll))["collection.c.status_code"] == code


def test_cluster_metrics_parse_both_shapes():
    disabled = models.InlineResponse2003.model_validate({"result": cluster_status(0, 0), "status": "ok"})
    enabled = models.InlineResponse2003.model_validate({"result": cluster_status(5, 4), "status": "ok"})

    assert cluster_metrics(disabled) == {"cluster.enabled": 0}
    assert cluster_metrics(enabled) == {"cluster.enabled": 1, "cluster.peers": 5, "cluster.pending_operations": 4}


def _result(metrics: dict[str, float]) -> ProbeResult:
    return ProbeResult("vec", "qdrant", "up", 3.0, "1.19.0", metrics, None, "2025-01-01T00:00:00.000Z")


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        ({"ready": 1, "collection.a.status_code": 0}, "up"),
        ({"ready": 1, "collection.a.status_code": 1}, "degraded"),
        ({"ready": 1, "collection.a.status_code": 2}, "degraded"),
        ({"ready": 0, "collection.a.status_code": 0}, "degraded"),
        ({"ready": 1, "collections_missing": 1}, "degraded"),
    ],
)
def test_default_rules(metrics, status):
    assert RuleSet.for_target("qdrant", [], []).evaluate(_result(metrics)).status == status
