"""The dashboard's one write into the store: silences (maintenance windows), operators and admins only.

The role check happens here, on every write, whatever the page showed: `hulk_ops.core.silences.may_silence`.
Who is signed in comes from `hulk_ops/dashboard/operator.py`. A silence is never deleted by the dashboard:
"end now" moves its end to the present, so the record of who silenced what stays (ended silences
are pruned a week after their end).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import orjson
import redis

from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.core.config import Config
from hulk_ops.core.silences import Silence, may_silence, new_id

KEEP_ENDED_S = 7 * 86_400
MAX_WINDOW_S = 31 * 86_400


class NotAllowed(Exception):
    """The person may not do this; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str | None


class SilenceWriter:
    def __init__(self, config: Config, client: redis.Redis) -> None:
        self.config = config
        self.redis = client
        self.key = NotifyKeys(config.store.prefix).silences

    def add(self, who: Operator | None, targets: list[str], selector: dict[str, str], start: float, end: float,
            reason: str, now: float | None = None) -> Silence:
        self._check(who)
        assert who is not None
        now = time.time() if now is None else now
        known = {t.name for t in self.config.targets}
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise ValueError(f"unknown target(s): {', '.join(unknown)}")
        if not targets and not selector:
            raise ValueError("choose targets or a label selector")
        if end <= start or end <= now:
            raise ValueError("the window must end after it starts, and in the future")
        if end - start > MAX_WINDOW_S:
            raise ValueError("a window is at most 31 days")
        if not reason.strip():
            raise ValueError("say why (the reason is shown to everyone and sent with nothing else)")
        silence = Silence(id=new_id(), start=start, end=end, author=who.name, reason=reason.strip(),
                          targets=tuple(targets), selector=dict(selector), source="dashboard", created_at=now)
        self.redis.hset(self.key, silence.id, orjson.dumps(silence.to_dict()))
        self._prune(now)
        return silence

    def end_now(self, who: Operator | None, silence_id: str, now: float | None = None) -> Silence:
        self._check(who)
        now = time.time() if now is None else now
        raw = self.redis.hget(self.key, silence_id)
        if raw is None:
            raise ValueError(f"no silence {silence_id} (silences from the config are changed in the config)")
        silence = Silence.from_dict(orjson.loads(raw))
        ended = replace(silence, end=min(silence.end, now), start=min(silence.start, now))
        self.redis.hset(self.key, silence_id, orjson.dumps(ended.to_dict()))
        return ended

    def _check(self, who: Operator | None) -> None:
        if who is None:
            raise NotAllowed("sign in as an operator to add or end silences")
        if not may_silence(who.role):
            raise NotAllowed(f"{who.name} is a {who.role or 'person without a role'}: only operators and admins "
                             "may add or end silences")

    def _prune(self, now: float) -> None:
        for key, raw in self.redis.hgetall(self.key).items():
            try:
                if float(orjson.loads(raw)["end"]) < now - KEEP_ENDED_S:
                    self.redis.hdel(self.key, key)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
