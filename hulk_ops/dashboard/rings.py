"""Ring moves on the technology radar: who moved which component from which ring to which, when and why.

A component's ring is the newest of two sources: radar.yaml (a change to a ring there is recorded when a
dashboard starts, as made by "radar.yaml") and moves admins make on the radar page (with their name and
reason). Every move is kept in the store (`P {radar}:moves`, the page's timeline, newest 1,000) and, when an
audit database is configured, appended to the audit log (action `ring_move`) before it takes effect.

    P {radar}:rings       hash    component -> the ring in force (JSON: ring, source, by, at, why)
    P {radar}:file_rings  hash    component -> the ring radar.yaml had when a dashboard last started
    P {radar}:moves       list    moves (JSON), newest first
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson
import redis

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import Config
from hulk_ops.dashboard.readmodel.radar import RINGS, RadarFile
from hulk_ops.dashboard.silence_writer import NotAllowed, Operator

MOVES_KEPT = 1000
FILE = "radar.yaml"
# compare-and-set of the file's ring, so that of several dashboards starting at once one records the move
_SEEN = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev == ARGV[2] then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return prev or ''
"""


@dataclass(frozen=True, slots=True)
class RingMove:
    component: str
    previous: str
    ring: str
    by: str
    source: str  # "dashboard" | "radar.yaml"
    why: str
    at: float


class RingBook:
    def __init__(self, config: Config, client: redis.Redis,
                 audit: Callable[[RingMove], None] | None = None) -> None:
        keys = Keys(config.store.prefix)
        self.config = config
        self.redis = client
        self.rings_key, self.file_key = keys.radar("rings"), keys.radar("file_rings")
        self.moves_key = keys.radar("moves")
        self._audit = audit if audit is not None else _audit_log(config)
        self._seen = client.register_script(_SEEN)

    # -- reads --------------------------------------------------------------------------------------
    def in_force(self, radar: RadarFile) -> dict[str, str]:
        """component -> ring: the newest move's ring, else radar.yaml's."""
        stored = self.redis.hgetall(self.rings_key)
        out = {}
        for c in radar.components:
            raw = stored.get(c.name.encode())
            ring = orjson.loads(raw).get("ring") if raw else None
            out[c.name] = ring if ring in RINGS else c.ring
        return out

    def moves(self, limit: int = 200, component: str | None = None) -> list[RingMove]:
        out = []
        for raw in self.redis.lrange(self.moves_key, 0, MOVES_KEPT - 1):
            move = RingMove(**orjson.loads(raw))
            if component is None or move.component == component:
                out.append(move)
            if len(out) >= limit:
                break
        return out

    # -- writes -------------------------------------------------------------------------------------
    def move(self, who: Operator | None, radar: RadarFile, component: str, ring: str, why: str,
             now: float | None = None) -> RingMove:
        """An admin's move from the dashboard: audited first, then in force."""
        if who is None or who.role != "admin":
            raise NotAllowed("only admins move a component between rings" if who is not None
                             else "sign in as an admin to move a component between rings")
        names = {c.name for c in radar.components}
        if component not in names:
            raise ValueError(f"no component {component!r} in the radar")
        if ring not in RINGS:
            raise ValueError(f"ring must be one of {', '.join(RINGS)}")
        if not why.strip():
            raise ValueError("say why (the reason is kept with the move)")
        previous = self.in_force(radar)[component]
        if previous == ring:
            raise ValueError(f"{component} is already in {ring}")
        move = RingMove(component, previous, ring, who.name, "dashboard", why.strip()[:500],
                        time.time() if now is None else now)
        self._record(move)
        return move

    def sync_file(self, radar: RadarFile, now: float | None = None) -> list[RingMove]:
        """Record the rings radar.yaml changed since a dashboard last started (first sight: nothing to record)."""
        now = time.time() if now is None else now
        in_force = self.in_force(radar)
        moves = []
        for c in radar.components:
            before = self._seen(keys=[self.file_key], args=[c.name, c.ring])
            if before is None:
                continue
            before = before.decode() if isinstance(before, bytes) else str(before)
            if not before:
                continue  # first sight of this component: its ring is where it starts, not a move
            move = RingMove(c.name, in_force[c.name] if in_force[c.name] != c.ring else before, c.ring, FILE, FILE,
                            f"radar.yaml changed ({before} -> {c.ring})", now)
            self._record(move)
            moves.append(move)
        return moves

    def _record(self, move: RingMove) -> None:
        self._audit(move)  # raises when the audit log is configured and cannot take the row: nothing changes
        data = orjson.dumps(asdict(move))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.rings_key, move.component, orjson.dumps(
            {"ring": move.ring, "source": move.source, "by": move.by, "at": move.at, "why": move.why}))
        pipe.lpush(self.moves_key, data)
        pipe.ltrim(self.moves_key, 0, MOVES_KEPT - 1)
        pipe.execute()


def _audit_log(config: Config) -> Callable[[RingMove], None]:
    if not config.audit.url:
        return lambda move: None

    def append(move: RingMove) -> None:
        from hulk_ops.actions.audit import AuditRecord, PostgresAuditLog

        record = AuditRecord(
            request_id=str(uuid.uuid4()), username=move.by, action="ring_move", target=move.component,
            object="radar", params={"from": move.previous, "to": move.ring, "why": move.why, "source": move.source},
            outcome="succeeded", roles=["admin"] if move.source == "dashboard" else [], via=move.source)
        asyncio.run(PostgresAuditLog(config.audit).append(record))

    return append
