"""Fixtures for the RunPod probe and simulator: a private simulator and probes built from config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import yaml

from hulk_ops.core.config import parse_config
from hulk_ops.entrypoints.bootstrap import build_probe
from hulk_ops.probes.base import Probe
from sandbox.runpod_sim import RunpodSimulator

# the seeded serverless endpoints (sandbox/runpod_state.py)
VLLM, SDXL = "vllm7x2k9q4p1a", "sdxl3n8b5t1c6y"


@pytest.fixture
def runpod_sim() -> Iterator[RunpodSimulator]:
    sim = RunpodSimulator().start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def runpod_globals(runpod_sim: RunpodSimulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK's process-wide settings pointed at the simulator, for SDK calls that only read globals."""
    import runpod

    monkeypatch.setenv("RUNPOD_API_BASE_URL", runpod_sim.url)
    monkeypatch.setattr(runpod, "api_key", runpod_sim.api_key)
    monkeypatch.setattr(runpod, "endpoint_url_base", runpod_sim.endpoint_url)
    return runpod


@pytest.fixture
def runpod_target() -> Callable[..., dict[str, Any]]:
    """runpod_target(sim, **overrides) -> a runpod target config watching both seeded endpoints."""
    return _target


def _target(sim: RunpodSimulator, **overrides: Any) -> dict[str, Any]:
    target: dict[str, Any] = {
        "name": "gpu-cloud",
        "kind": "runpod",
        "url": sim.url,
        "endpoint_url": sim.endpoint_url,
        "api_key": sim.api_key,
        "endpoints": [VLLM, SDXL],
        "interval_s": 10,
        "timeout_s": 2.0,
    }
    target.update(overrides)
    return target


@pytest.fixture
async def make_runpod_probe() -> AsyncIterator[Callable[..., Probe]]:
    """make_runpod_probe(target_dict) -> a probe built through config validation; closed afterwards."""
    probes: list[Probe] = []

    def _make(target: dict[str, Any], **sections: Any) -> Probe:
        config = parse_config(yaml.safe_dump({**sections, "targets": [target]}), "runpod-test.yaml")
        probe = build_probe(config, config.targets[0])
        probes.append(probe)
        return probe

    yield _make
    for probe in probes:
        await probe.close()
