"""A collector batch on a Redis Cluster: one MULTI/EXEC per slot, each part with its own exactly-once mark.

A MULTI/EXEC cannot span slots, so a batch is split by the slot of each key. Keys carry hash tags
(`hulk_ops/collectors/codec.py`): one target's chunks, metric index and event stream form one part; the fleet's
latest hash, event stream and last-write stamp are parts of their own. Every part ends with `SET` of its mark,
`Keys.batch_mark(writer, tag)`, whose tag is one of the part's own hash tags, so the mark lands with the part or
not at all.

The parts of a node travel in one pipeline (`MULTI ... EXEC MULTI ... EXEC`, then `WAIT 1` when the master has a
replica: a part counts once replicated), the nodes concurrently: a batch costs one round trip per master. Some
parts may land and others not (a master down or failing over, a slot moving, a replica that does not confirm).
The batch's record of which records landed in which slot (`done`) then makes the retried batch re-send only
the rest, and `landed()` reads every outstanding mark to settle a write whose outcome is unknown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from hulk_ops.collectors.codec import Keys, hash_tag
from hulk_ops.collectors.redis_client import packed_commands

SLOT_CACHE_MAX = 200_000
REPLICAS_REFRESH_S = 5.0


@dataclass
class Part:
    """The commands of one batch in one slot."""

    slot: int
    tags: set[str] = field(default_factory=set)
    commands: list[list[Any]] = field(default_factory=list)
    records: list[object] = field(default_factory=list)  # results and changes with a command here
    mark: str | None = None  # its batch mark key

    def tag(self) -> str:
        return min(self.tags)


class SlotBatch:
    """Collects a batch's commands per slot. It answers the pipeline calls the store makes (`append`, `expire`,
    `sadd`, `xadd`); `begin(record)` names the record whose commands follow, and a record already stored in a
    slot (an earlier attempt's part that landed) gets no command there again."""

    def __init__(self, slots: SlotCache, done: Mapping[tuple[int, int], object]) -> None:
        self.slots = slots
        self.done = done
        self.parts: dict[int, Part] = {}
        self.record: object | None = None

    def begin(self, record: object) -> None:
        self.record = record

    def _part(self, key: str) -> Part | None:
        """The part for `key`'s slot, or None when the current record is already stored there."""
        tag = hash_tag(key)
        slot = self.slots.of(tag, key)
        record = self.record
        if record is not None and (id(record), slot) in self.done:
            return None
        part = self.parts.get(slot)
        if part is None:
            part = self.parts[slot] = Part(slot)
        part.tags.add(tag)
        if record is not None and (not part.records or part.records[-1] is not record):
            part.records.append(record)
        return part

    def add(self, key: str, *command: Any) -> None:
        part = self._part(key)
        if part is not None:
            part.commands.append(list(command))

    def append(self, key: str, value: bytes) -> None:
        self.add(key, "APPEND", key, value)

    def expire(self, key: str, seconds: int) -> None:
        self.add(key, "EXPIRE", key, seconds)

    def sadd(self, key: str, *values: Any) -> None:
        self.add(key, "SADD", key, *values)

    def xadd(self, key: str, fields: Mapping[Any, Any], maxlen: int, approximate: bool = True) -> None:
        flat = [item for pair in fields.items() for item in pair]
        self.add(key, "XADD", key, "MAXLEN", "~" if approximate else "=", maxlen, "*", *flat)

    def hset(self, key: str, mapping: Mapping[Any, Any]) -> None:
        """HSETs of one key in a row become one command (the latest hash gets a field per result)."""
        part = self._part(key) if mapping else None
        if part is None:
            return
        flat = [item for pair in mapping.items() for item in pair]
        last = part.commands[-1] if part.commands else None
        if last is not None and last[0] == "HSET" and last[1] == key:
            last.extend(flat)
        else:
            part.commands.append(["HSET", key, *flat])

    def set(self, key: str, value: Any, ex: int | None = None) -> None:
        self.add(key, "SET", key, value, *(("EX", ex) if ex is not None else ()))


class SlotCache:
    """Hash tag -> cluster slot (CRC16), remembered: the same targets come back every cycle."""

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}

    def of(self, tag: str, key: str) -> int:
        """The slot of `key`, whose hash tag is `tag`."""
        slot = self._slots.get(tag)
        if slot is None:
            slot = key_slot(key.encode())
            if len(self._slots) < SLOT_CACHE_MAX:
                self._slots[tag] = slot
        return slot


class PartsFailed(RedisConnectionError):
    """Some parts of a batch did not land or their outcome is unknown (the writer keeps the batch)."""


@dataclass
class Outstanding:
    """A batch with parts not known to have landed: (writer, seq) and its parts by mark key."""

    writer: str
    seq: int
    parts: dict[str, Part]


class ClusterBatches:
    """Writes batches to a cluster part by part and remembers what landed until the batch is whole."""

    def __init__(self, cluster: RedisCluster, keys: Keys, mark_ttl_s: int, timeout_s: float = 5.0,
                 replica_ack_ms: int = 1000) -> None:
        self.cluster = cluster
        self.timeout_s = timeout_s
        self.replica_ack_ms = replica_ack_ms
        self._replica_counts: dict[str, tuple[float, int]] = {}  # node -> (read at, connected replicas)
        self.keys = keys
        self.mark_ttl_s = mark_ttl_s
        self.slots = SlotCache()
        # (id(record), slot) -> record: stored there by an earlier attempt of the batch under way (the record
        # itself is held so that its id is not reused while it is here)
        self.done: dict[tuple[int, int], object] = {}
        self.outstanding: Outstanding | None = None
        self.last_whole: tuple[str, int] | None = None  # (writer, seq) of the newest batch stored whole
        self._nodes: dict[str, aioredis.Redis] = {}
        self._stale_map = False

    def batch(self) -> SlotBatch:
        return SlotBatch(self.slots, self.done)

    async def write(self, batch: SlotBatch, writer: str | None, seq: int) -> None:
        """Send every part (with its mark when `writer` is given); raises `PartsFailed` unless all landed."""
        if not batch.parts:
            self._whole(writer, seq)
            return
        parts = list(batch.parts.values())
        marks: dict[str, Part] = {}
        if writer is not None:
            for part in parts:
                part.mark = mark = self.keys.batch_mark(writer, part.tag())
                part.commands.append(["SET", mark, seq, "EX", self.mark_ttl_s])
                marks[mark] = part
            # until the parts answer, every one of them is unsure (a cancellation leaves them so)
            self.outstanding = Outstanding(writer, seq, dict(marks))
        by_node = await self._by_node(parts)
        outcomes = await asyncio.gather(*(self._send(node, group) for node, group in by_node.items()),
                                        return_exceptions=True)
        failed: list[str] = []
        for (node, group), outcome in zip(by_node.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, RedisError | OSError | TimeoutError):
                    raise outcome
                self._stale_map = True
                failed.append(f"{node}: {type(outcome).__name__}: {outcome}")
                continue
            for part, error in zip(group, outcome, strict=True):
                if error is None:
                    self._landed(part)
                    if self.outstanding is not None and part.mark is not None:
                        self.outstanding.parts.pop(part.mark, None)
                else:
                    self._stale_map = True  # MOVED, ASK, CLUSTERDOWN: the slot map may have changed
                    failed.append(f"slot {part.slot}: {error}")
        if failed:
            raise PartsFailed(f"{len(failed)} part(s) of the batch did not land: {'; '.join(failed[:3])}")
        self._whole(writer, seq)

    async def landed(self, writer: str, seq: int) -> bool:
        """Whether every part of batch `seq` of `writer` is stored (each part's mark reads `seq` or later)."""
        pending = self.outstanding
        if pending is None or (pending.writer, pending.seq) != (writer, seq):
            whole = self.last_whole  # sequence numbers only grow: a later whole batch means this one is stored
            return whole is not None and whole[0] == writer and whole[1] >= seq
        if pending.parts:
            for part, value in await self._read_marks(list(pending.parts.values())):
                if value is not None and int(value) >= seq:
                    self._landed(pending.parts.pop(part.mark))  # type: ignore[arg-type]
        if pending.parts:
            return False
        self._whole(writer, seq)
        return True

    async def _read_marks(self, parts: list[Part]) -> list[tuple[Part, Any]]:
        """(part, its mark's value), read from the master of each part's slot the way parts are written (the
        same connections and slot map, refreshed after a failure). Raises `PartsFailed` when a master does
        not answer or no longer serves the slot."""
        by_node = await self._by_node(parts)
        outcomes = await asyncio.gather(*(self._marks_of(node, group) for node, group in by_node.items()),
                                        return_exceptions=True)
        out: list[tuple[Part, Any]] = []
        for (node, group), outcome in zip(by_node.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, RedisError | OSError | TimeoutError):
                    raise outcome
                self._stale_map = True
                raise PartsFailed(f"cannot read the batch marks on {node}: {type(outcome).__name__}: {outcome}")
            for part, value in zip(group, outcome, strict=True):
                if isinstance(value, Exception):
                    self._stale_map = True
                    raise PartsFailed(f"cannot read the batch mark of slot {part.slot}: {value}")
                out.append((part, value))
        return out

    async def _marks_of(self, node: str, parts: list[Part]) -> list[Any]:
        """The marks of parts on one master; when it has replicas, only once one of them has all this
        connection wrote (a write of our own after the reads, then WAIT): a mark on a master that dies
        before replicating it does not count."""
        commands: list[list[Any]] = [["GET", p.mark] for p in parts]
        need = await self._replicas_needed(node)
        if need:
            commands += [["SET", f"{parts[0].mark}:ack", 1, "EX", 60], ["WAIT", need, self.replica_ack_ms]]
        replies = await self._exchange(self._nodes[node], commands)
        if need and not await self._replicated(node, replies[-1], need):
            raise PartsFailed(f"{node}: no replica acknowledged the batch marks within {self.replica_ack_ms} ms")
        return replies[:len(parts)]

    async def _replicas_needed(self, node: str, fresh: bool = False) -> int:
        """1 when the master has a connected replica (a part counts once it has it too), else 0. Re-read
        every `REPLICAS_REFRESH_S` (INFO): WAIT for a replica that is gone would block every batch."""
        now = time.monotonic()
        known = self._replica_counts.get(node)
        if fresh or known is None or now - known[0] > REPLICAS_REFRESH_S:
            (info,) = await self._exchange(self._nodes[node], [["INFO", "replication"]])
            text = info.decode() if isinstance(info, bytes) else str(info)
            count = next((int(line.split(":", 1)[1]) for line in text.splitlines()
                          if line.startswith("connected_slaves:")), 0)
            known = self._replica_counts[node] = (now, count)
        return min(1, known[1])

    async def _replicated(self, node: str, acked: Any, need: int) -> bool:
        if isinstance(acked, int) and acked >= need:
            return True
        return await self._replicas_needed(node, fresh=True) == 0  # the replica went away meanwhile

    def _landed(self, part: Part) -> None:
        for record in part.records:
            self.done[(id(record), part.slot)] = record

    def _whole(self, writer: str | None, seq: int) -> None:
        self.done.clear()
        self.outstanding = None
        if writer is not None:
            self.last_whole = (writer, seq)

    async def _by_node(self, parts: Iterable[Part]) -> dict[str, list[Part]]:
        await self.cluster.initialize()
        manager = self.cluster.nodes_manager
        if self._stale_map:  # a node failed or a slot moved: ask the cluster for its slot map again
            self._stale_map = False
            await manager.initialize()
        out: dict[str, list[Part]] = {}
        for part in parts:
            node = manager.get_node_from_slot(part.slot)
            out.setdefault(node.name, []).append(part)
            if node.name not in self._nodes:
                self._nodes[node.name] = node_client(node)
        return out

    async def _send(self, node: str, parts: list[Part]) -> list[str | None]:
        """One pipeline to one master: MULTI, the part's commands, EXEC, for each part. Per part: None when
        it landed, else the error."""
        commands: list[list[Any]] = []
        for part in parts:
            commands.append(["MULTI"])
            commands.extend(part.commands)
            commands.append(["EXEC"])
        need = await self._replicas_needed(node)
        if need:
            commands.append(["WAIT", need, self.replica_ack_ms])
        replies = await self._exchange(self._nodes[node], commands)
        if need and not await self._replicated(node, replies[-1], need):
            # the master took the parts but its replica may not have them: unsure until their marks are read
            # back with the replica's acknowledgement (`landed()`)
            return [f"{node}: no replica acknowledged within {self.replica_ack_ms} ms"] * len(parts)
        out: list[str | None] = []
        at = 0
        for part in parts:
            at += len(part.commands) + 2
            reply = replies[at - 1]  # EXEC: the replies of the part's commands, or why it was discarded
            if isinstance(reply, list):
                out.append(None)
                continue
            queued = [r for r in replies[at - len(part.commands) - 2:at - 1] if isinstance(r, Exception)]
            out.append(str(queued[0] if queued else reply))
        return out

    async def _exchange(self, client: aioredis.Redis, commands: list[list[Any]]) -> list[Any]:
        """Send the commands in one write and read their replies, error replies as exception objects. The
        replies are read straight from the connection's hiredis reader under one deadline: redis-py's pipeline
        arms a timer per reply, which cost a third of the CPU of a batch of ~2,000 replies."""
        pool = client.connection_pool
        conn = await pool.get_connection()
        done = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                parser = conn._parser
                replies = [await parser.read_response() for _ in commands]
            done = True
            return replies
        finally:
            if not done:  # replies may still be on their way: the connection cannot serve another request
                await conn.disconnect()
            await pool.release(conn)

    async def aclose(self) -> None:
        for client in self._nodes.values():
            await client.aclose()
        self._nodes.clear()


def node_client(node: Any) -> aioredis.Redis:
    """A plain client of one cluster master with its node's connection settings, answering raw replies (the
    commands it sends are queued inside MULTI: their replies are QUEUED, not what the usual parsers expect)."""
    pool = aioredis.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
    client = packed_commands(aioredis.Redis(connection_pool=pool))
    client.response_callbacks.clear()
    return client
