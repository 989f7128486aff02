"""Config reload with sharding on: two `hulk-ops collect` replicas get SIGHUP after targets were added to their
shared file; each new target is then probed by its HRW owner only, every slot once (audited from the stored
history), and the replicas' owned counts add up to the new total. The same for targets both replicas discover
from the Kubernetes simulator's Services."""

from __future__ import annotations

import signal
import time

import pytest
import yaml

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.shard_audit import audit
from hulk_ops.collectors.sharding import assign
from hulk_ops.core.config import TargetSettings, load_config
from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_scaleout"]

INTERVAL = 1.0
SHARDING = {"enabled": True, "membership_ttl_s": 1.0, "sync_s": 0.25, "handover_s": 1.0, "max_clock_skew_s": 0.05}


def _targets(redis_url: str, count: int, prefix: str) -> list[dict]:
    return [{"name": f"{prefix}{i:02d}", "kind": "redis", "url": redis_url, "interval_s": INTERVAL,
             "timeout_s": 0.3} for i in range(count)]


def _wait(condition, timeout: float, what: str) -> None:
    assert wait_for(condition, timeout, step=0.1), f"timed out waiting for {what}"


@pytest.mark.timeout(120)
def test_reload_with_sharding_keeps_one_owner_per_target(write_config, redis_server, replicas_factory) -> None:
    path = write_config(_targets(redis_server.url, 10, "old"), collector={"jitter_pct": 2, "sharding": SHARDING})
    reps = replicas_factory(path)
    reps.start("r0")
    reps.start("r1")
    reps.wait_active({"r0", "r1"})
    _wait(lambda: len(reps.latest_replicas()) == 10, 20, "the first targets probed")

    data = yaml.safe_load(path.read_text())
    data["targets"] += _targets(redis_server.url, 10, "new")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    for proc in reps.procs.values():
        proc.send_signal(signal.SIGHUP)
    _wait(lambda: all("config_reloaded" in (reps.logs / f"{r}.log").read_text() for r in ("r0", "r1")), 20,
          "both replicas reloaded")
    reloaded = reps.server_time()
    config = load_config(path)
    names = [t.name for t in config.targets]
    expected = assign(names, ["r0", "r1"])
    _wait(lambda: reps.latest_replicas() == expected, 15, "every target probed by its HRW owner")
    _wait(lambda: reps.owned_metric("r0") + reps.owned_metric("r1") == 20, 10, "owned counts add up")
    start = reloaded + 2 * INTERVAL
    while reps.server_time() < start + 6 * INTERVAL:
        time.sleep(0.1)
    end = reps.server_time()
    overruns = reps.overruns("r0") + reps.overruns("r1")
    reps.stop_all()
    result = audit(reps.redis, Keys(reps.prefix), config.targets, start, end)
    assert result.slots >= 20 * 5
    assert not result.doubles, result.doubles[:5]
    assert not result.missing or overruns > 0, result.missing[:5]


@pytest.mark.timeout(120)
def test_discovered_targets_have_one_owner_across_replicas(write_config, redis_server, replicas_factory) -> None:
    """Both replicas discover the same Services; sharding by name gives each discovered target one owner."""
    sim = KubernetesSimulator().start()
    try:
        for i in range(8):
            sim.control("put_service", {"namespace": "hulk-prod", "name": f"svc{i}", "cluster_ip": "127.0.0.1",
                                        "ports": [{"port": redis_server.port or 6379}],
                                        "annotations": {"hulk-ops.io/kind": "redis",
                                                        "hulk-ops.io/interval": str(INTERVAL)}})
        path = write_config(
            [{"name": "cluster", "kind": "kubernetes", "url": sim.url, "token": DEFAULT_TOKEN, "interval_s": 5}],
            collector={"jitter_pct": 2, "sharding": SHARDING},
            discovery={"kubernetes": {"target": "cluster", "refresh_s": 1}})
        reps = replicas_factory(path)
        reps.start("r0")
        reps.start("r1")
        reps.wait_active({"r0", "r1"})
        names = ["cluster", *(f"svc{i}.hulk-prod" for i in range(8))]
        expected = assign(names, ["r0", "r1"])
        expected.pop("cluster")  # the kubernetes probe of the simulator: not what is audited here
        _wait(lambda: {k: v for k, v in reps.latest_replicas().items() if k != "cluster"} == expected, 30,
              "every discovered target probed by its HRW owner")
        start = reps.server_time() + INTERVAL
        while reps.server_time() < start + 6 * INTERVAL:
            time.sleep(0.1)
        end = reps.server_time()
        overruns = reps.overruns("r0") + reps.overruns("r1")
        reps.stop_all()
        config = load_config(path)
        found = [TargetSettings(name=n, kind="redis", url="redis://x", interval_s=INTERVAL) for n in expected]
        result = audit(reps.redis, Keys(reps.prefix), found, start, end)
        assert config.discovery.kubernetes is not None
        assert result.slots >= 8 * 5
        assert not result.doubles, result.doubles[:5]
        assert not result.missing or overruns > 0, result.missing[:5]
    finally:
        sim.stop()
