"""Fixtures for the Qdrant probe and simulator tests (loaded with `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.probes.base import Probe
from sandbox.qdrant_sim import QdrantSimulator


@pytest.fixture
def qdrant_sim() -> Iterator[QdrantSimulator]:
    """A fresh simulator per test (seeded, green, ready, no api key); stopped afterwards."""
    with QdrantSimulator() as sim:
        yield sim


@pytest.fixture
async def qdrant_probe() -> AsyncIterator[Callable[..., Probe]]:
    """qdrant_probe(url, **target_fields) -> the probe the collector would build (registry, rules, retries).

    The target goes through the real config loader; probes made here are closed afterwards.
    """
    made: list[Probe] = []

    def _make(url: str, **fields: Any) -> Probe:
        target = {"name": "vectors", "kind": "qdrant", "url": url, "timeout_s": 1.0, **fields}
        config = parse_config(yaml.safe_dump({"targets": [target]}), source="<test>")
        probe = build_probe(config, config.targets[0])
        made.append(probe)
        return probe

    yield _make
    for probe in made:
        await probe.close()
