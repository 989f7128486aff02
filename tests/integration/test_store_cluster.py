"""The store on a Redis Cluster: three masters of Debian's redis-server on loopback, created with
`redis-cli --cluster create`. A real `hulk-ops collect` writes a fleet whose targets spread over every master;
the read model and a page read it all back; a batch whose part on one master failed is completed by its retry
without writing any sample twice; the notifier's leader lock, the sharding leases and the ring moves work as on
one Redis; a master SIGKILLed under the collector is replaced by its replica and every probe is stored once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
import yaml
from streamlit.testing.v1 import AppTest

from hulk_ops.collectors.codec import Keys, hash_tag
from hulk_ops.collectors.membership import RedisMembership
from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.collectors.slot_batches import PartsFailed
from hulk_ops.collectors.store import RedisResultStore
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.collectors.writer import BufferedWriter
from hulk_ops.core.config import ConfigError, load_config, parse_config
from hulk_ops.core.model import ProbeResult, StateChange, iso
from hulk_ops.dashboard.readmodel import ReadModel
from sandbox.redis_ha import ClusterGroup
from sandbox.services import LOOPBACK, ServiceError
from tests.integration.test_store_outage import Listener
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_outage"]

APP = str(Path(__file__).resolve().parents[2] / "hulk_ops" / "dashboard" / "app.py")
FLEET = tuple(f"svc-{i:02d}" for i in range(24))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    try:
        group = ClusterGroup(tmp_path_factory.mktemp("cluster"))
        group.start()
    except ServiceError as exc:
        pytest.fail(str(exc))
    try:
        yield group
    finally:
        group.stop()


def _owner(group: ClusterGroup, key: str) -> int:
    """The port of the master serving `key`'s slot."""
    with group.client(group.ports[0]) as c:
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_replicas in c.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
    raise AssertionError(f"no master serves {key}")


def _result(target: str, ts: float, status: str = "up") -> ProbeResult:
    from datetime import UTC, datetime

    return ProbeResult(target=target, kind="tcp", status=status, latency_ms=1.5, version=None, metrics={},
                       error=None, observed_at=iso(datetime.fromtimestamp(ts, UTC)))


def test_a_collector_spreads_the_fleet_over_every_master_and_the_pages_read_it_back(
        redis_cluster, collector_process, tmp_path, monkeypatch) -> None:
    prefix = "cl1:"
    listener = Listener()
    listener.open()
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"cluster_url": redis_cluster.url, "prefix": prefix},
        "collector": {"breaker": {"failures": 1000}, "flush_interval_s": 0.1},
        "targets": [{"name": n, "kind": "tcp", "url": f"tcp://127.0.0.1:{listener.port}", "interval_s": 0.5,
                     "timeout_s": 0.4} for n in FLEET],
    }, sort_keys=False))
    config = load_config(path)
    keys = Keys(prefix)
    model = ReadModel(config)
    started = time.time()
    try:
        collector = collector_process(path)
        assert wait_for(lambda: len(model.latest()) == len(FLEET), 30), "the fleet's results did not land"
        time.sleep(2)
        took = collector.terminate()
    finally:
        listener.close()
    assert collector.proc.returncode == 0 and took < 3.0, took
    final = orjson.loads(next(iter(model.redis.hgetall(keys.collectors).values())))
    assert final["stopped"] is True and final["buffered"] == 0 and final["dropped"] == 0, final

    # every target's keys share its slot; the targets spread over all three masters, which hold them
    hour = int(time.time() // 3600)
    owners: dict[int, list[str]] = {}
    for name in FLEET:
        slots = {hash_tag(k) for k in (keys.history(name, hour), keys.target_events(name), keys.metric_index(name))}
        assert slots == {name}
        owners.setdefault(_owner(redis_cluster, keys.history(name, hour)), []).append(name)
    masters = redis_cluster.master_ports()
    assert sorted(owners) == masters and len(masters) == 3, (owners, masters)
    for port, names in owners.items():
        with redis_cluster.client(port) as node:  # a plain client: no redirect, the key is on this node
            assert all(node.exists(keys.history(n, hour)) for n in names), port

    # the read model: latest of all, history of each, and the cross-target MGET fanned out over the nodes
    latest = model.latest()
    assert set(latest) == set(FLEET) and {r.status for r in latest.values()} == {"up"}
    stored = 0
    for name in FLEET:
        ts = model.history(name, started - 60, time.time() + 1)["ts"]
        assert len(ts) >= 2 and (np.diff(ts) > 0).all(), name
        stored += len(ts)
    assert stored == final["probes_done"], (stored, final["probes_done"])
    hours = [int(started // 3600), hour] if int(started // 3600) != hour else [hour]
    blobs = model.history_blobs(list(FLEET), hours)
    assert sum(len(b or b"") for b in blobs) == stored * 7

    # a page renders from the cluster
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    import streamlit as st

    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown = "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])
        assert "cannot read the store" not in shown
        assert any(m.value == str(len(FLEET)) for m in at.metric), [(m.label, m.value) for m in at.metric]
    finally:
        st.cache_resource.clear()


def test_a_batch_whose_part_failed_on_one_master_is_completed_once(redis_cluster) -> None:
    prefix = "cl2:"
    keys = Keys(prefix)
    names = [f"retry-{i:02d}" for i in range(18)]
    now = time.time()
    results = [_result(n, now) for n in names]
    changes = [StateChange(n, "tcp", None, "up", None, results[0].observed_at) for n in names]
    refusing = _owner(redis_cluster, keys.history(names[0], int(now // 3600)))
    elsewhere = [n for n in names if _owner(redis_cluster, keys.history(n, int(now // 3600))) != refusing]
    assert elsewhere and len(elsewhere) < len(names)

    async def run() -> tuple[bool, bool, int]:
        store = RedisResultStore(redis_cluster.url, keys, cluster=True)
        writer = BufferedWriter(store, CollectorMetrics(), batch_max=1000)
        for result, change in zip(results, changes, strict=True):
            writer.submit(result, change)
        with redis_cluster.client(refusing) as node:  # this master refuses writes: its parts fail
            node.config_set("min-replicas-to-write", 1)
            try:
                first = await writer.flush_once()
            finally:
                node.config_set("min-replicas-to-write", 0)
        assert isinstance(store.slot_batches.outstanding.parts, dict)  # type: ignore[union-attr]
        outstanding = len(store.slot_batches.outstanding.parts)  # type: ignore[union-attr]
        second = await writer.flush_once()  # asks which parts landed, then sends only the others
        await store.close()
        return first, second, outstanding

    first, second, outstanding = asyncio.run(run())
    assert first is False and second is True and outstanding >= 1
    model = ReadModel(parse_config(f"store: {{cluster_url: '{redis_cluster.url}', prefix: '{prefix}'}}"))
    for name in names:
        assert len(model.history(name, now - 5, now + 5)) == 1, name  # one probe, one sample
        assert len(model.events(10, target=name)) == 1, name
    assert len(model.events(100)) == len(names)
    assert set(model.latest()) == set(names)


def test_a_part_failure_is_reported_and_its_mark_read_back(redis_cluster) -> None:
    keys = Keys("cl3:")
    now = time.time()
    target = "mark-a"
    port = _owner(redis_cluster, keys.history(target, int(now // 3600)))

    async def run() -> tuple[bool, bool]:
        store = RedisResultStore(redis_cluster.url, keys, cluster=True)
        with redis_cluster.client(port) as node:
            node.config_set("min-replicas-to-write", 1)
            try:
                with pytest.raises(PartsFailed, match="did not land"):
                    await store.write([_result(target, now)], [], batch=("w", 7))
            finally:
                node.config_set("min-replicas-to-write", 0)
        before = await store.batch_landed("w", 7)
        await store.write([_result(target, now + 1)], [], batch=("w", 8))
        after = await store.batch_landed("w", 8)
        await store.close()
        return before, after

    assert asyncio.run(run()) == (False, True)


def test_the_notifier_leader_lock_and_outbox_work_on_the_cluster(redis_cluster) -> None:
    async def run() -> None:
        one = NotifyStore(redis_cluster.url, "cl4:", cluster=True)
        two = NotifyStore(redis_cluster.url, "cl4:", cluster=True)
        assert await one.acquire_leader("a", 5) is True
        assert await two.acquire_leader("b", 5) is False
        assert await one.acquire_leader("a", 5) is True  # renewal
        await one.release_leader("a")
        assert await two.acquire_leader("b", 5) is True
        # incident state and two webhooks' outboxes in one MULTI/EXEC: one slot ({notify})
        ids = await one.next_ids(2)
        await one.commit({}, [], [{"webhook": "w1", "id": ids[0]}, {"webhook": "w2", "id": ids[1]}])
        assert await one.queue_length("w1") == 1 and await one.queue_length("w2") == 1
        raw, message = await one.head("w1")  # type: ignore[misc]
        assert await one.pop_head("w1", raw) is True and message["id"] == ids[0]
        await one.close()
        await two.close()

    asyncio.run(run())


def test_sharding_leases_work_on_the_cluster(redis_cluster) -> None:
    one = RedisMembership(redis_cluster.url, "cl5:", cluster=True)
    two = RedisMembership(redis_cluster.url, "cl5:", cluster=True)
    try:
        one.join({"id": "r1", "token": "t1"}, ttl_s=5, handover_s=1)
        two.join({"id": "r2", "token": "t2"}, ttl_s=5, handover_s=1)
        snap = one.sync("r1", "t1", ttl_s=5)
        assert snap.renewed == 1 and sorted(r["id"] for r in snap.records) == ["r1", "r2"]
        assert two.leave("r2", "t2", handover_s=1) is not None
        assert two.sync("r2", "wrong", ttl_s=5).renewed == -1
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(("store", "words"), [
    ({"cluster_url": "redis://h:1", "sentinel": {"master": "m", "addresses": ["h:2"]}}, "exclude each other"),
    ({"cluster_url": "redis://h:1", "redis_url": "redis://h:2/0"}, "cluster_url and redis_url exclude"),
    ({"cluster_url": "http://h:1"}, "must be redis://host:port"),
    ({"cluster_url": "redis://h"}, "must be redis://host:port"),
    ({"cluster_url": "redis://h:1/3"}, "only database 0"),
])
def test_bad_cluster_config_names_the_field(store, words) -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml: store.*" + words.replace("(", r"\(")):
        parse_config(yaml.safe_dump({"store": store}), "x.yaml")


def test_the_cluster_password_is_a_secret_and_never_in_messages(redis_cluster) -> None:
    config = parse_config(yaml.safe_dump({"store": {"cluster_url": f"redis://:pw-cluster-9@{LOOPBACK}:9"}}), "x")
    assert "pw-cluster-9" in config.secrets()
    model = ReadModel(config)
    with pytest.raises(Exception) as caught:
        model.latest()
    assert "pw-cluster-9" not in str(caught.value) and "Redis Cluster" in str(caught.value)
    assert isinstance(redis.RedisError(), Exception)


def test_an_upgrade_adopts_the_outboxes_kept_under_untagged_names(store_redis_url, store_prefix) -> None:
    async def run() -> tuple[int, int, bool]:
        store = NotifyStore(store_redis_url, store_prefix)
        await store.commit({}, [], [{"webhook": "ops", "id": 1}, {"webhook": "ops", "id": 2}])
        queue = store.keys.queue("ops")
        await store.redis.rename(queue, store.keys.untagged(queue))  # as an earlier version left it
        assert await store.queue_length("ops") == 0
        state = await store.load_state(["ops"])
        left = bool(await store.redis.exists(store.keys.untagged(queue)))
        length = await store.queue_length("ops")
        await store.close()
        return len(state), length, left

    assert asyncio.run(run()) == (0, 2, False)


def test_a_cross_target_read_follows_a_moved_slot(redis_cluster) -> None:
    prefix = "cl6:"
    keys = Keys(prefix)
    names = [f"moved-{i}" for i in range(12)]
    now = time.time()

    async def write() -> None:
        store = RedisResultStore(redis_cluster.url, keys, cluster=True)
        await store.write([_result(n, now) for n in names], [], batch=("w", 1))
        await store.close()

    asyncio.run(write())
    model = ReadModel(parse_config(f"store: {{cluster_url: '{redis_cluster.url}', prefix: '{prefix}'}}"))
    hour = int(now // 3600)
    assert all(model.history_blobs(names, [hour]))
    # the client's slot map goes stale (as after a resharding): the master it names answers MOVED
    cluster = model.redis.built()
    slot = cluster.keyslot(keys.history(names[0], hour))
    right = cluster.nodes_manager.slots_cache[slot][0]
    wrong = next(n for n in cluster.get_primaries() if n.name != right.name)
    cluster.nodes_manager.slots_cache[slot] = [wrong]
    blobs = model.history_blobs(names, [hour])
    assert all(len(b or b"") == 7 for b in blobs), blobs


def test_ring_moves_and_pulled_series_work_on_the_cluster(redis_cluster, tmp_path) -> None:
    from hulk_ops.core.radar import load_radar
    from hulk_ops.dashboard.rings import RingBook
    from hulk_ops.dashboard.silence_writer import Operator

    radar_file = tmp_path / "radar.yaml"
    radar_file.write_text(yaml.safe_dump({"components": [{"name": "Kafka", "quadrant": "Messaging", "ring": "Hold"}]}))
    config = parse_config(yaml.safe_dump({"store": {"cluster_url": redis_cluster.url, "prefix": "cl7:"},
                                          "dashboard": {"radar_file": str(radar_file)}}))
    model = ReadModel(config)
    book = RingBook(config, model.redis)
    radar = load_radar(radar_file)
    assert book.sync_file(radar) == []  # the compare-and-set script on the cluster
    book.move(Operator("ada", "admin"), radar, "Kafka", "Assess", "tiered storage", now=100.0)  # MULTI/EXEC
    assert book.in_force(radar) == {"Kafka": "Assess"} and [m.ring for m in book.moves()] == ["Assess"]

    now = time.time()

    async def pull() -> None:
        store = RedisResultStore(redis_cluster.url, Keys("cl7:"), cluster=True)
        await store.write_series([('up{job="a"}', now, 1.0), ('up{job="b"}', now, 0.0)])
        await store.close()

    asyncio.run(pull())
    assert model.series_names() == ['up{job="a"}', 'up{job="b"}']
    assert list(model.series_history('up{job="b"}', now - 5, now + 5)["value"]) == [0.0]


def test_a_killed_master_is_replaced_and_every_probe_is_stored_once(collector_process, tmp_path) -> None:
    try:
        group = ClusterGroup(tmp_path / "six", masters=3, replicas=1, node_timeout_ms=1000)
        (tmp_path / "six").mkdir()
        group.start()
    except ServiceError as exc:
        pytest.fail(str(exc))
    listener = Listener()
    listener.open()
    prefix = "fo:"
    path = tmp_path / "failover.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"cluster_url": group.url, "prefix": prefix},
        "collector": {"breaker": {"failures": 1000}, "flush_interval_s": 0.1},
        "targets": [{"name": f"fo-{i}", "kind": "tcp", "url": f"tcp://127.0.0.1:{listener.port}", "interval_s": 0.5,
                     "timeout_s": 0.4} for i in range(24)],
    }, sort_keys=False))
    config = load_config(path)
    try:
        model = ReadModel(config)
        collector = collector_process(path)
        assert wait_for(lambda: len(model.latest()) == 24, 30), "the fleet's results did not land"
        time.sleep(1)
        victim = next(p for p in group.master_ports() if p != group.ports[0])
        group.kill(victim)
        killed = time.time()
        group.wait_promoted(victim)
        promoted = time.time() - killed
        before = model.redis.get(Keys(prefix).last_write)
        # the collector writes on by itself once the replica took over (no restart)
        assert wait_for(lambda: model.redis.get(Keys(prefix).last_write) != before, 15), "no write after the failover"
        time.sleep(1)
        took = collector.terminate()
        model = ReadModel(config)  # a fresh client: the slot map without the dead node
        final = orjson.loads(next(iter(model.redis.hgetall(Keys(prefix).collectors).values())))
        stored = sum(len(model.history(f"fo-{i}", killed - 600, time.time() + 1)) for i in range(24))
    finally:
        listener.close()
        group.stop()
    assert collector.proc.returncode == 0 and took < 3.0, took
    assert final["stopped"] is True and final["buffered"] == 0 and final["dropped"] == 0, final
    print(f"cluster failover: promoted {promoted:.1f} s after the kill; {stored} samples, "
          f"{final['probes_done']} probes")
    assert stored == final["probes_done"], (stored, final["probes_done"])


def test_a_batch_part_sent_to_the_wrong_master_is_refused_and_resent_once(redis_cluster) -> None:
    keys = Keys("cl8:")
    names = [f"stale-{i:02d}" for i in range(12)]
    now = time.time()

    async def run() -> tuple[bool, bool]:
        store = RedisResultStore(redis_cluster.url, keys, cluster=True)
        writer = BufferedWriter(store, CollectorMetrics(), batch_max=1000)
        cluster = store.redis
        await cluster.initialize()
        # the slot map goes stale (as after a resharding): one target's master is named wrongly
        slot = cluster.keyslot(keys.history(names[0], int(now // 3600)))
        manager = cluster.nodes_manager
        right = manager.slots_cache[slot][0]
        manager.slots_cache[slot] = [next(n for n in cluster.get_primaries() if n.name != right.name)]
        for name in names:
            writer.submit(_result(name, now))
        first = await writer.flush_once()  # that part is refused (MOVED inside MULTI: EXECABORT)
        second = await writer.flush_once()  # the map is read again; only that part is sent again
        await store.close()
        return first, second

    assert asyncio.run(run()) == (False, True)
    model = ReadModel(parse_config(f"store: {{cluster_url: '{redis_cluster.url}', prefix: 'cl8:'}}"))
    assert [len(model.history(n, now - 5, now + 5)) for n in names] == [1] * len(names)


def test_a_part_counts_only_once_the_masters_replica_has_it(tmp_path) -> None:
    import os
    import signal

    try:
        group = ClusterGroup(tmp_path / "acks", masters=3, replicas=1)
        (tmp_path / "acks").mkdir()
        group.start()
    except ServiceError as exc:
        pytest.fail(str(exc))
    keys = Keys("ack:")
    names = [f"ack-{i:02d}" for i in range(12)]
    now = time.time()
    master = _owner(group, keys.history(names[0], int(now // 3600)))
    with group.client(master) as c:
        replica = int(c.info("replication")["slave0"]["port"])

    async def run() -> tuple[bool, bool, bool]:
        store = RedisResultStore(group.url, keys, cluster=True)
        writer = BufferedWriter(store, CollectorMetrics(), batch_max=1000)
        for name in names:
            writer.submit(_result(name, now))
        os.killpg(group.processes[replica].pid, signal.SIGSTOP)  # the replica takes nothing in
        try:
            first = await writer.flush_once()  # the master took its parts, its replica did not acknowledge
            settled = await writer.flush_once()  # the marks are there, still not on the replica: unsure
        finally:
            os.killpg(group.processes[replica].pid, signal.SIGCONT)
        last = await writer.flush_once()  # the replica has them: the batch counts, nothing is re-sent
        await store.close()
        return first, settled, last

    try:
        assert asyncio.run(run()) == (False, False, True)
        model = ReadModel(parse_config(f"store: {{cluster_url: '{group.url}', prefix: 'ack:'}}"))
        assert [len(model.history(n, now - 5, now + 5)) for n in names] == [1] * len(names)
        with group.client(replica) as r:  # the replica holds the master's parts
            r.execute_command("READONLY")
            assert r.strlen(keys.history(names[0], int(now // 3600))) == 7
    finally:
        group.stop()


def test_rollups_burn_counts_and_long_windows_work_on_the_cluster(redis_cluster) -> None:
    """The rollup job's scripts and reads, the burn watch's reads and the long-range reader span every master."""
    from hulk_ops.collectors.notify.burnwatch import BurnWatch
    from hulk_ops.collectors.redis_client import async_client
    from hulk_ops.collectors.rollup_job import RollupJob
    from hulk_ops.core.config import RollupSettings
    from hulk_ops.dashboard.readmodel.longrange import long_range

    prefix = "clroll:"
    keys = Keys(prefix)
    names = [f"roll-{i:02d}" for i in range(12)]
    base = int(time.time() // 3600) - 3
    results = [_result(n, base * 3600 + 60 * k + 5, "down" if k % 10 == 0 else "up")
               for k in range(180) for n in names]
    owners = {_owner(redis_cluster, keys.rollup_hourly(n, base // 24)) for n in names}
    assert len(owners) == 3, "the targets' summaries lie on every master"

    async def run() -> tuple[int, dict]:
        store = RedisResultStore(redis_cluster.url, keys, cluster=True)
        for start in range(0, len(results), 500):
            await store.write(results[start:start + 500], [])
        await store.close()
        client = async_client(redis_cluster.url, None, timeout_s=5.0, client_name="t", cluster=True)
        try:
            job = RollupJob(client, keys, RollupSettings(), 24, lambda: names)
            await job.once((base + 3) * 3600 + 120)
            again = RollupJob(client, keys, RollupSettings(), 24, lambda: names)
            await again.once((base + 3) * 3600 + 120)
            counts = await BurnWatch(client, keys).counts(names, (base + 3) * 3600)
            return job.stats.hours_written + again.stats.hours_written, counts
        finally:
            await client.aclose()

    written, counts = asyncio.run(run())
    assert written == 3 * len(names), "every target-hour summarised once, whichever master holds it"
    assert counts[names[0]]["1h"] == (60, 6)
    model = ReadModel(parse_config(f"store: {{cluster_url: '{redis_cluster.url}', prefix: '{prefix}', "
                                   f"retention_h: 24}}"))
    totals = long_range(model).totals(names, base * 3600, (base + 3) * 3600 - 1, now=(base + 3) * 3600 + 130)
    assert totals.counts.sum(axis=1).tolist() == [180] * len(names)
    assert totals.counts[:, 2].tolist() == [18] * len(names)
