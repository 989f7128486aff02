"""The dashboard's only way into the store: typed, read-only views over the Redis keys.

Pages never parse raw keys. Freshness is decided here: a target whose newest result is older
than 3 of its intervals is "stale", never "up"; one never seen is "unknown".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from collectors.codec import Keys, decode_points, decode_samples, hours_between
from hulk_ops.config import Config, TargetSettings, redact_url
from hulk_ops.model import ProbeResult

STALE_INTERVALS = 3
DISPLAY_STATUSES = ("down", "degraded", "stale", "unknown", "up")


class StoreUnavailable(Exception):
    """Redis cannot be read; the message is safe to show (no secrets)."""


@dataclass(frozen=True, slots=True)
class TargetView:
    settings: TargetSettings
    result: ProbeResult | None
    status: str  # up | degraded | down | stale | unknown
    age_s: float | None
    breaker: str = "closed"

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    ts: float
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class CollectorView:
    replica: str
    heartbeat_age_s: float
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Overview:
    targets: list[TargetView]
    counts: dict[str, int]
    events: list[Event]
    collectors: list[CollectorView]
    last_write_age_s: float | None
    collector_stale: bool
    read_at: float
    problems: list[TargetView] = field(default_factory=list)


def status_of(result: ProbeResult | None, interval_s: float, now: float) -> tuple[str, float | None]:
    if result is None:
        return "unknown", None
    age = max(0.0, now - result.observed_ts)
    if age > STALE_INTERVALS * interval_s:
        return "stale", age
    return result.status, age


class ReadModel:
    def __init__(self, config: Config, client: redis.Redis | None = None) -> None:
        self.config = config
        self.keys = Keys(config.store.prefix)
        self.redis = client or redis.Redis.from_url(
            config.store.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0),
            client_name="hulk-ops-dashboard",
        )

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot read the store at {redact_url(self.config.store.redis_url)}: {type(exc).__name__}: {exc}"
            ) from None

    # -- latest state -------------------------------------------------------------------------
    def latest(self) -> dict[str, ProbeResult]:
        raw = self._call(self.redis.hgetall, self.keys.latest)
        out: dict[str, ProbeResult] = {}
        for name, blob in raw.items():
            try:
                out[name.decode()] = ProbeResult.from_dict(orjson.loads(blob))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return out

    def breakers(self) -> dict[str, dict[str, Any]]:
        raw = self._call(self.redis.hgetall, self.keys.breakers)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def target_views(self, now: float | None = None) -> list[TargetView]:
        now = time.time() if now is None else now
        latest = self.latest()
        breakers = self.breakers()
        views = []
        for target in self.config.targets:
            result = latest.get(target.name)
            status, age = status_of(result, target.interval_s, now)
            breaker = breakers.get(target.name, {}).get("state", "closed")
            views.append(TargetView(target, result, status, age, breaker))
        return views

    def overview(self, events: int = 15) -> Overview:
        now = time.time()
        views = self.target_views(now)
        counts = {s: 0 for s in DISPLAY_STATUSES}
        for view in views:
            counts[view.status] += 1
        last_write = self._call(self.redis.get, self.keys.last_write)
        last_write_age = now - float(last_write) if last_write else None
        threshold = STALE_INTERVALS * min((t.interval_s for t in self.config.targets), default=15.0)
        collector_stale = bool(self.config.targets) and (last_write_age is None or last_write_age > max(threshold, 3.0))
        order = {s: i for i, s in enumerate(DISPLAY_STATUSES)}
        problems = sorted((v for v in views if v.status != "up"), key=lambda v: (order[v.status], v.name))
        return Overview(
            targets=views, counts=counts, events=self.events(events), collectors=self.collectors(now),
            last_write_age_s=last_write_age, collector_stale=collector_stale, read_at=now, problems=problems,
        )

    def collectors(self, now: float | None = None) -> list[CollectorView]:
        now = time.time() if now is None else now
        raw = self._call(self.redis.hgetall, self.keys.collectors)
        out = []
        for replica, blob in raw.items():
            info = orjson.loads(blob)
            out.append(CollectorView(replica.decode(), now - float(info.get("heartbeat_at", 0)), info))
        return sorted(out, key=lambda c: c.heartbeat_age_s)

    # -- events -------------------------------------------------------------------------------
    def events(self, limit: int = 50, target: str | None = None) -> list[Event]:
        key = self.keys.target_events(target) if target else self.keys.events
        raw = self._call(self.redis.xrevrange, key, "+", "-", limit)
        out = []
        for event_id, fields in raw:
            eid = event_id.decode()
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            out.append(Event(eid, int(eid.split("-")[0]) / 1000.0, decoded))
        return out

    # -- history ------------------------------------------------------------------------------
    def history(self, target: str, start: float, end: float) -> np.ndarray:
        """Probe samples (ts, status code, latency) of one target in [start, end]."""
        hours = hours_between(start, end)
        blobs = self._call(self.redis.mget, [self.keys.history(target, h) for h in hours])
        return decode_samples(list(zip(hours, blobs, strict=True)), start, end)

    def metric_history(self, target: str, metric: str, start: float, end: float) -> np.ndarray:
        hours = hours_between(start, end)
        blobs = self._call(self.redis.mget, [self.keys.metric(target, metric, h) for h in hours])
        return decode_points(list(zip(hours, blobs, strict=True)), start, end)

    def tracked_metrics(self, target: str) -> list[str]:
        return sorted(m.decode() for m in self._call(self.redis.smembers, self.keys.metric_index(target)))

    # -- pulled series (Prometheus queries) ------------------------------------------------------
    def series_names(self) -> list[str]:
        """Names of every pulled series: `<query>` or `<query>{label="v",...}`, sorted."""
        return sorted(n.decode() for n in self._call(self.redis.smembers, self.keys.series_index()))

    def series_history(self, name: str, start: float, end: float) -> np.ndarray:
        """Points (ts, value) of one pulled series in [start, end]."""
        hours = hours_between(start, end)
        blobs = self._call(self.redis.mget, [self.keys.series(name, h) for h in hours])
        return decode_points(list(zip(hours, blobs, strict=True)), start, end)
