"""Hash tags of the store's keys and the split of a batch per cluster slot (no server needed)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from hulk_ops.collectors.codec import Keys, hash_tag
from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.collectors.slot_batches import SlotBatch, SlotCache

pytestmark = pytest.mark.unit
KEYS = Keys("hulk:")


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize(("key", "tag"), [
    ("hulk:h:{redis-a}:493210", "redis-a"),
    ("hulk:latest", "hulk:latest"),
    ("hulk:x{}y{z}", "hulk:x{}y{z}"),  # an empty first tag: Redis hashes the whole key
    ('hulk:s:{up{job="x"}}:5', 'up{job="x"'),
])
def test_hash_tag_is_what_redis_cluster_hashes(key, tag) -> None:
    assert hash_tag(key) == tag
    assert slot(key) == key_slot(tag.encode())


def test_a_targets_keys_share_one_slot_and_targets_spread() -> None:
    for target in ("redis-a", "db.main", "x"):
        keys = [KEYS.history(target, 1), KEYS.history(target, 2), KEYS.metric(target, "m.used", 3),
                KEYS.metric_index(target), KEYS.target_events(target), KEYS.batch_mark("w", target)]
        assert len({slot(k) for k in keys}) == 1, keys
        assert KEYS.history(target, 7) == f"hulk:h:{{{target}}}:7"
    assert len({slot(KEYS.history(f"t{i}", 1)) for i in range(100)}) > 90
    assert len({slot(KEYS.series('up{job="a"}', h)) for h in range(24)}) == 1


def test_keys_written_together_share_a_tag() -> None:
    shard = [KEYS.shard_members, KEYS.shard_member("r1"), KEYS.shard_member("r2")]
    notify = NotifyKeys("hulk:")
    radar = [KEYS.radar(n) for n in ("rings", "file_rings", "moves")]
    for group in (shard, [notify.incidents, notify.queue("a"), notify.queue("b")], radar):
        assert len({slot(k) for k in group}) == 1, group
    assert notify.untagged(notify.queue("ops")) == "hulk:notify:q:ops"


def test_a_batch_is_split_per_slot_and_a_landed_record_is_not_sent_again() -> None:
    a, b = object(), object()
    done: dict[tuple[int, int], object] = {}
    batch = SlotBatch(SlotCache(), done)
    for record, target in ((a, "a"), (b, "b")):
        batch.begin(record)
        batch.hset(KEYS.latest, {target: b"{}"})
    for record, target in ((a, "a"), (b, "b")):
        batch.begin(record)
        batch.append(KEYS.history(target, 1), b"x")
        batch.expire(KEYS.history(target, 1), 60)
    latest = batch.parts[slot(KEYS.latest)]
    assert latest.commands == [["HSET", KEYS.latest, "a", b"{}", "b", b"{}"]]  # one HSET for the fleet
    assert latest.records == [a, b]
    part_a = batch.parts[slot(KEYS.history("a", 1))]
    assert part_a.tag() == "a" and part_a.records == [a]
    assert [c[0] for c in part_a.commands] == ["APPEND", "EXPIRE"]

    done[(id(a), slot(KEYS.latest))] = a  # a's latest field and b's history landed in an earlier attempt
    done[(id(b), slot(KEYS.history("b", 1)))] = b
    retry = SlotBatch(SlotCache(), done)
    for record, target in ((a, "a"), (b, "b")):
        retry.begin(record)
        retry.hset(KEYS.latest, {target: b"{}"})
        retry.append(KEYS.history(target, 1), b"x")
    assert retry.parts[slot(KEYS.latest)].commands == [["HSET", KEYS.latest, "b", b"{}"]]
    assert slot(KEYS.history("b", 1)) not in retry.parts
    assert retry.parts[slot(KEYS.history("a", 1))].commands == [["APPEND", KEYS.history("a", 1), b"x"]]
