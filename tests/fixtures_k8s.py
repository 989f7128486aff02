"""Fixtures of the Kubernetes tests: a fresh simulated API server per test, and the official client on it.

Load with ``pytest_plugins = ["tests.fixtures_k8s"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator


@pytest.fixture
def k8s_sim() -> Iterator[KubernetesSimulator]:
    """A seeded cluster (3 nodes, 8 deployments, 14 pods) on a private loopback port; stopped afterwards."""
    sim = KubernetesSimulator().start()
    try:
        yield sim
    finally:
        sim.stop()


def api_client(url: str, token: str = DEFAULT_TOKEN) -> client.ApiClient:
    cfg = client.Configuration(host=url, api_key={"authorization": token},
                               api_key_prefix={"authorization": "Bearer"})
    cfg.retries = False
    return client.ApiClient(cfg)


@pytest.fixture
def k8s_api(k8s_sim: KubernetesSimulator) -> Iterator[client.ApiClient]:
    """The official client's ApiClient, authenticated against `k8s_sim`."""
    api = api_client(k8s_sim.url)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def make_k8s_api() -> Iterator[Callable[..., client.ApiClient]]:
    """make_k8s_api(url, token=DEFAULT_TOKEN) -> an ApiClient, closed after the test."""
    made: list[client.ApiClient] = []

    def make(url: str, token: str = DEFAULT_TOKEN) -> client.ApiClient:
        made.append(api_client(url, token))
        return made[-1]

    yield make
    for api in made:
        api.close()
