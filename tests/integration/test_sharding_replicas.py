"""Sharded collectors on loopback: 3 `hulk-ops collect` replicas, 300 Redis targets, real Redis leases.

One scenario, audited from the store's history (one sample per probe): every slot of every target
probed exactly once while replicas join, one is killed (-9) and restarted, and one leaves
gracefully; the dead replica's targets are probed by the others within 2 intervals.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.shard_audit import audit, probe_times
from hulk_ops.collectors.sharding import assign
from hulk_ops.core.config import load_config

pytest_plugins = ["tests.fixtures_scaleout"]

INTERVAL = 2.0
TARGETS = 300
# takeover <= ttl + sync + skew + interval * (1 + jitter) = 1.0 + 0.25 + 0.05 + 2.04 s: inside 2 intervals
SHARDING = {"enabled": True, "membership_ttl_s": 1.0, "sync_s": 0.25, "handover_s": 1.5, "max_clock_skew_s": 0.05}


@pytest.fixture
def sharded_config(write_config, redis_server):
    # timeout well inside the interval: a run that overran into the next slot would make the owner skip it
    targets = [{"name": f"t{i:03d}", "kind": "redis", "url": redis_server.url, "interval_s": INTERVAL,
                "timeout_s": 0.5} for i in range(TARGETS)]
    return write_config(targets, collector={"jitter_pct": 2, "sharding": SHARDING})


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_split(reps, expected: dict[str, str], timeout: float, what: str) -> None:
    """Wait until the newest result of every target was written by its expected replica."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = reps.latest_replicas()
        if got == expected:
            return
        time.sleep(0.1)
    wrong = {t: (got.get(t), r) for t, r in expected.items() if got.get(t) != r}
    raise AssertionError(f"{what}: {len(wrong)} targets (got, expected): {dict(list(wrong.items())[:8])}")


@pytest.mark.timeout(120)
def test_three_replicas_share_targets_take_over_and_rebalance(sharded_config, replicas_factory):
    config = load_config(sharded_config)
    names = [t.name for t in config.targets]
    reps = replicas_factory(sharded_config)
    for rid in ("r0", "r1", "r2"):
        reps.start(rid)
    start = reps.wait_active({"r0", "r1", "r2"}) + 0.1  # slots from here on are fully coordinated

    # -- steady state: the split is HRW over the three, and /metrics says so ------------------------
    settled = assign(names, ["r0", "r1", "r2"])
    expected = Counter(settled.values())
    wait_split(reps, settled, 5 * INTERVAL, "every target probed by its HRW owner")
    assert {rid: reps.owned_metric(rid) for rid in ("r0", "r1", "r2")} == {r: float(n) for r, n in expected.items()}
    assert sum(expected.values()) == TARGETS and min(expected.values()) >= 70, expected

    # -- kill -9 r0: the others take its targets within 2 intervals --------------------------------
    orphans = [t for t, owner in settled.items() if owner == "r0"]
    time.sleep(INTERVAL)
    lags = {"r0 (killed)": reps.heartbeats()["r0"]["max_lag_s"]}
    overruns = {"r0 (killed)": reps.overruns("r0")}
    killed_at = reps.server_time()
    reps.kill("r0")
    store, keys = reps.redis, Keys(reps.prefix)

    def first_after() -> dict[str, float | None]:
        return {t: min((ts - killed_at for ts in probe_times(store, keys, t, killed_at, killed_at + 3 * INTERVAL)
                        if ts > killed_at), default=None) for t in orphans}

    # results reach the store a little after the probe (batching): wait for them, then judge the probe times
    wait_until(lambda: None not in first_after().values(), 2 * INTERVAL + 5.0, "r0's targets probed by others")
    late = {t: after for t, after in first_after().items() if after is None or after >= 2 * INTERVAL}
    assert not late, f"{len(late)} of r0's {len(orphans)} targets not probed within 2 intervals: {late}"
    survivors = assign(names, ["r1", "r2"])
    wait_split(reps, survivors, 2 * INTERVAL, "the HRW split over r1 and r2")

    # -- r0 comes back: it gets the same targets back, with no gap and no double probe -------------
    reps.start("r0")
    reps.wait_active({"r0", "r1", "r2"})
    wait_split(reps, settled, 5 * INTERVAL, "r0 probing its targets again")

    # -- r1 leaves gracefully: hands its targets over at a slot boundary ---------------------------
    took = reps.terminate("r1")
    assert took < SHARDING["handover_s"] + 6.0, f"graceful stop took {took:.1f} s"  # handover, flush, exit
    wait_split(reps, assign(names, ["r0", "r2"]), 5 * INTERVAL, "r1's targets moved")
    time.sleep(INTERVAL)
    # the audited window covers at least 9 intervals however fast the steps above went
    while reps.server_time() - start < 9.5 * INTERVAL:
        time.sleep(0.1)
    end = reps.server_time()

    # -- the audit: every slot in [start, end] exactly once, r0's may miss only around the crash ---
    overruns |= {rid: reps.overruns(rid) for rid in ("r0", "r2")}
    reps.stop_all()
    gaps = {t: (killed_at - 1.0, killed_at + 2 * INTERVAL) for t in orphans}
    result = audit(store, keys, config.targets, start, end, allowed_gaps=gaps)
    assert result.slots >= TARGETS * 8
    around = {t: [round(ts - at, 2) for ts in probe_times(store, keys, t, at - 2 * INTERVAL, at + 2 * INTERVAL)]
              for t, at, *_ in (result.doubles[:3] + result.missing[:3])}  # probe times around each finding
    assert not result.doubles, f"{len(result.doubles)} slots probed twice: {result.doubles[:5]} {around}"

    # -- the heartbeats carry the balance (and each replica's worst start lag) ---------------------
    beats = reps.heartbeats()
    assert set(beats) == {"r0", "r1", "r2"}
    assert all(info["stopped"] and {"owned", "members"} <= set(info["shard"]) for info in beats.values())
    lags |= {rid: info["max_lag_s"] for rid, info in beats.items()}
    # A replica starved of CPU for most of an interval (this machine is shared) starts a run in the next
    # slot and lets the slot it was late for go, rather than probe one slot twice; a run that overran
    # into the next slot makes its owner skip that slot. Only these, reported by the replicas
    # themselves (start lag, hulk_ops_probes_skipped), may explain a skipped slot.
    starved = max(lags.values()) >= INTERVAL / 2 or sum(overruns.values()) > 0
    assert not result.missing or starved, (
        f"{len(result.missing)} slots skipped with no replica stalled (max start lag {lags}, overruns {overruns}):"
        f" {result.missing[:5]} {around}")
