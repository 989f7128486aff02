"""The store behind Redis Sentinel: a master, a replica and three sentinels (Debian's redis-server on loopback).
The master is SIGKILLed while a real `hulk-ops collect` writes; after the promotion every probe the collector
made is stored exactly once on the new master, and the dashboard's read model follows the failover too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import ConfigError, load_config, parse_config
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
from sandbox.redis_ha import MASTER_NAME, SentinelGroup
from sandbox.services import ServiceError
from tests.integration.test_store_outage import Listener
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_outage"]

PREFIX = "ha:"
TARGETS = ("a", "b", "c", "d")


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    try:
        group = SentinelGroup(tmp_path / "ha")
        (tmp_path / "ha").mkdir()
        group.start()
    except ServiceError as exc:
        pytest.fail(str(exc))
    try:
        yield group
    finally:
        group.stop()


def _config(tmp_path: Path, group: SentinelGroup, port: int) -> Path:
    path = tmp_path / "sentinel.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"prefix": PREFIX, "sentinel": {"master": MASTER_NAME, "addresses": group.addresses,
                                                 "min_replicas": 1, "ack_timeout_ms": 500}},
        "collector": {"breaker": {"failures": 1000}, "flush_interval_s": 0.1},
        "targets": [{"name": n, "kind": "tcp", "url": f"tcp://127.0.0.1:{port}", "interval_s": 0.5, "timeout_s": 0.4}
                    for n in TARGETS],
    }, sort_keys=False))
    return path


def test_a_killed_master_loses_no_acknowledged_sample_and_none_is_written_twice(
        sentinel_group, collector_process, tmp_path) -> None:
    listener = Listener()
    listener.open()
    path = _config(tmp_path, sentinel_group, listener.port)
    config = load_config(path)
    keys = Keys(PREFIX)
    try:
        collector = collector_process(path)
        first = sentinel_group.client(sentinel_group.master())
        assert wait_for(lambda: first.hlen(keys.latest) == len(TARGETS), 30), "nothing written through sentinel"
        first.close()
        time.sleep(3)
        old = sentinel_group.kill_master()
        killed_at = time.time()
        new = sentinel_group.wait_failover(old)
        promoted_after = time.time() - killed_at
        client = sentinel_group.client(new)
        before = client.get(keys.last_write)
        # the collector writes to the promoted master by itself (no restart), within its retry backoff
        assert wait_for(lambda: client.get(keys.last_write) != before, 20), "no write reached the new master"
        time.sleep(3)
        took = collector.terminate()
    finally:
        listener.close()
    assert collector.proc.returncode == 0 and took < 3.0, took
    final = orjson.loads(client.hget(keys.collectors, next(iter(client.hkeys(keys.collectors)))))
    assert final["stopped"] is True and final["buffered"] == 0 and final["dropped"] == 0, final
    model = ReadModel(config)  # through the sentinels, as the dashboard reads
    stored = 0
    for target in TARGETS:
        ts = model.history(target, killed_at - 600, time.time() + 1)["ts"]
        assert (np.diff(ts) > 0).all(), f"{target}: a sample twice or out of order"
        stored += len(ts)
    print(f"sentinel failover: promoted {promoted_after:.1f} s after the kill; {stored} samples stored, "
          f"{final['probes_done']} probes made")
    assert stored == final["probes_done"], (stored, final["probes_done"], promoted_after)
    client.close()


def test_the_read_model_reports_a_store_without_a_master_and_recovers(sentinel_group, tmp_path) -> None:
    config = load_config(_config(tmp_path, sentinel_group, 9))
    model = ReadModel(config)
    assert model.latest() == {}
    old = sentinel_group.kill_master()
    with pytest.raises(StoreUnavailable, match=r"Sentinel master 'hulkstore'.*failover may be under way"):
        model.latest()  # the pooled connection to the killed master fails: the banner's message
    sentinel_group.wait_failover(old)
    assert wait_for(lambda: _reads(model), 10), "the read model did not follow the promotion"


def _reads(model: ReadModel) -> bool:
    try:
        model.latest()
        return True
    except StoreUnavailable:
        return False


@pytest.mark.parametrize(("sentinel", "words"), [
    ({"master": "m", "addresses": []}, "store.sentinel.addresses"),
    ({"master": "m", "addresses": ["nohost"]}, "'nohost' is not host:port"),
    ({"master": "m", "addresses": ["h:99999"]}, "is not host:port"),
    ({"addresses": ["h:1"]}, "store.sentinel.master: field required"),
])
def test_bad_sentinel_config_names_the_field(sentinel, words) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        parse_config(yaml.safe_dump({"store": {"sentinel": sentinel}}), "x.yaml")


def test_sentinel_passwords_are_secrets() -> None:
    config = parse_config(yaml.safe_dump({"store": {"sentinel": {
        "master": "m", "addresses": ["h:1"], "password": "pw-store-1", "sentinel_password": "pw-sent-2"}}}), "x")
    assert {"pw-store-1", "pw-sent-2"} <= set(config.secrets())
    assert "pw-store-1" not in repr(config.store)
