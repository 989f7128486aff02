"""Validating a config (every report, the dashboard, `config check`) defines every kind's settings but talks to no
backend: it must not pay for importing the client libraries, nor build the action request models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from hulk_ops.probes import registry

pytestmark = pytest.mark.unit

LOADED_ONLY_TO_PROBE_OR_ACT = ("aiohttp.client", "nats.aio.client", "kubernetes.client", "httpx._client",
                               "asyncpg.connection", "structlog.dev", "hulk_ops.actions.model")


def test_validating_a_config_of_every_kind_imports_no_client_library(tmp_path) -> None:
    targets = [{"name": f"t-{kind}", **example} for kind in registry.kinds()
               if (example := registry.example(kind)) is not None]
    assert {t["kind"] for t in targets} >= {"http", "nats", "kubernetes", "qdrant", "postgres", "redis"}
    path = tmp_path / "hulk.yaml"
    path.write_text(yaml.safe_dump({"store": {"redis_url": "redis://127.0.0.1:6379/0"}, "targets": targets}))
    watched = LOADED_ONLY_TO_PROBE_OR_ACT
    code = ("import json, sys; from hulk_ops.entrypoints import cli; from hulk_ops.core.config import load_config; "
            f"config = load_config({str(path)!r}); "
            f"print(json.dumps([len(config.targets), [m for m in {watched!r} if m in sys.modules]]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    count, loaded = json.loads(done.stdout)
    assert count == len(targets)
    assert loaded == []


def test_a_probe_built_from_such_a_config_loads_its_client_and_works_offline(tmp_path) -> None:
    """The lazily bound library is the real one once touched: a probe of an unreachable URL reports it as down
    with the client's own error family, not an AttributeError from a half-loaded module."""
    import asyncio

    from hulk_ops.core.config import parse_config

    config = parse_config(yaml.safe_dump({"targets": [
        {"name": "web", "kind": "http", "url": "http://127.0.0.1:9/", "timeout_s": 2},
        {"name": "bus", "kind": "nats", "url": "nats://127.0.0.1:9", "timeout_s": 2},
        {"name": "db", "kind": "postgres", "url": "postgresql://u@127.0.0.1:9/db", "timeout_s": 2},
    ]}))

    async def probe_all() -> list:
        probes = [registry.build_probe(t) for t in config.targets]
        try:
            return [await p.check() for p in probes]
        finally:
            for p in probes:
                await p.close()

    results = asyncio.run(probe_all())
    assert [r.status for r in results] == ["down", "down", "down"]
    assert all("refused" in (r.error or "") or "reachable" in (r.error or "") for r in results), \
        [r.error for r in results]
