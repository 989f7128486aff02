"""RunPod serverless worker limits against the RunPod simulator (GraphQL saveEndpoint through the SDK's
client): guard, CLI, bounds, refusal paths and audit rows."""

from __future__ import annotations

import functools

import orjson
import pytest

from hulk_ops.actions.guard import GuardedAction
from hulk_ops.actions.model import EndpointWorkers, Principal
from hulk_ops.core.config import load_config
from tests.fixtures_actions import add_user

pytest_plugins = ["tests.fixtures_actions", "tests.fixtures_runpod"]
OPERATOR = Principal(name="otto", roles=("operator",), via="test")
VLLM, SDXL = "vllm7x2k9q4p1a", "sdxl3n8b5t1c6y"  # seeded: workers 0..3 and 0..2


@pytest.fixture
def workers_config(write_config, audit_schema, runpod_sim, runpod_target):
    return write_config([runpod_target(runpod_sim, name="gpu-cloud")], audit=audit_schema.model_dump(),
                        actions={"prices": {"gpu_hour": 2.5},
                                 "endpoint_workers": [{"target": "gpu-cloud", "endpoint": VLLM, "max": 8,
                                                       "usd_per_worker_hour": 0.69}]})


def limits(sim, endpoint: str = VLLM) -> tuple[int, int]:
    ep = sim.cloud.endpoints[endpoint]
    return ep.workers_min, ep.workers_max


async def test_preview_prices_the_delta_and_execute_saves_the_endpoint(workers_config, runpod_sim) -> None:
    guard = GuardedAction(load_config(workers_config))
    request = EndpointWorkers(target="gpu-cloud", endpoint=VLLM, min_workers=1, max_workers=6)
    preview = await guard.dry_run(OPERATOR, request)
    assert preview.status == "dry_run", preview.message
    p = preview.preview
    assert (p.before["workers_min"], p.before["workers_max"]) == (0, 3)
    assert p.cost_usd_per_hour_delta == pytest.approx(3 * 0.69)
    assert p.expected["always_on_usd_per_hour_delta"] == pytest.approx(0.69)
    assert "workers 0..3 -> 1..6" in p.summary
    assert limits(runpod_sim) == (0, 3)

    result = await guard.submit(OPERATOR, request, confirm=VLLM)
    assert result.status == "succeeded", result.message
    assert result.after == {"endpoint": VLLM, "workers_min": 1, "workers_max": 6}
    assert limits(runpod_sim) == (1, 6)
    assert runpod_sim.cloud.endpoints[VLLM].name == "llama3-8b-vllm"  # the rest of the endpoint is kept
    rows = await guard.history()
    assert [r.outcome for r in rows[:2]] == ["succeeded", "started"]


@pytest.mark.parametrize(("endpoint", "low", "high", "error"), [
    (VLLM, 0, 9, "workers 0..9 are outside the bounds of endpoint vllm7x2k9q4p1a (0..8"),
    (SDXL, 0, 4, "has no worker bounds in config (actions.endpoint_workers)"),
])
async def test_out_of_bounds_and_unlisted_are_refused(workers_config, runpod_sim, endpoint, low, high,
                                                      error) -> None:
    guard = GuardedAction(load_config(workers_config))
    before = limits(runpod_sim, endpoint)
    result = await guard.submit(OPERATOR, EndpointWorkers(target="gpu-cloud", endpoint=endpoint, min_workers=low,
                                                          max_workers=high), confirm=endpoint)
    assert result.status == "refused" and error in result.error
    assert limits(runpod_sim, endpoint) == before
    assert (await guard.history())[0].outcome == "refused"


def test_endpoint_workers_from_the_terminal(workers_config, runpod_sim, run) -> None:
    run = functools.partial(run, token=add_user(run, workers_config, "otto", "operator"))
    base = ["action", "endpoint-workers", "--config", str(workers_config), "--target", "gpu-cloud",
            "--endpoint", VLLM]
    code, out, _ = run(*base, "--min", "0", "--max", "5", "--dry-run")
    assert code == 0 and "+1.3800 USD/h" in out and f"--confirm {VLLM}" in out
    code, out, _ = run(*base, "--min", "0", "--max", "5", "--confirm", "gpu-cloud")
    assert code == 1 and "does not match" in out
    code, _out, err = run(*base, "--min", "4", "--max", "2", "--dry-run")
    assert code == 2 and "min_workers (4) must not exceed max_workers (2)" in err
    assert limits(runpod_sim) == (0, 3)
    code, out, _ = run(*base, "--min", "0", "--max", "5", "--confirm", VLLM, "--json")
    assert code == 0 and orjson.loads(out)["after"]["workers_max"] == 5
    assert limits(runpod_sim) == (0, 5)
    code, out, _ = run("audit", "list", "--config", str(workers_config), "--action", "endpoint_workers", "--json")
    outcomes = [orjson.loads(line)["outcome"] for line in out.splitlines()]
    assert outcomes[:4] == ["succeeded", "started", "refused", "dry_run"]
