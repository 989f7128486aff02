"""Fixtures for the Neo4j probe and simulator tests (loaded with `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.neo4j_sim import Neo4jSimulator


@pytest.fixture
def neo4j_sim() -> Iterator[Neo4jSimulator]:
    """A fresh simulator per test (seeded, all databases online); stopped afterwards."""
    with Neo4jSimulator() as sim:
        yield sim
