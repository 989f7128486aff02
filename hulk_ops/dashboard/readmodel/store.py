"""The read port: typed, read-only access to the store's Redis keys (the only module that knows them).

Freshness is decided here: a target whose newest result is older than 3 of its intervals is
"stale", never "up"; one never seen is "unknown".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np
import orjson
import redis

from hulk_ops.collectors.codec import Keys, decode_points, decode_samples, hours_between
from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.collectors.redis_client import CLIENT_ERRORS, LazyCluster, sync_client, where
from hulk_ops.core import incidents
from hulk_ops.core import silences as silences_mod
from hulk_ops.core.config import Config, TargetSettings
from hulk_ops.core.model import JSON, STALE_INTERVALS, ProbeResult, parse_iso
from hulk_ops.core.silences import Silence

DISPLAY_STATUSES = ("down", "degraded", "stale", "unknown", "up")

T = TypeVar("T")
P = ParamSpec("P")


class StoreUnavailable(Exception):
    """Redis cannot be read; the message is safe to show (no secrets). `since`: when reads began failing
    (this dashboard process's first failed read since the last good one)."""

    def __init__(self, message: str, since: float | None = None) -> None:
        super().__init__(message)
        self.since = since


@dataclass(frozen=True, slots=True)
class TargetView:
    settings: TargetSettings
    result: ProbeResult | None
    status: str  # up | degraded | down | stale | unknown
    age_s: float | None
    breaker: str = "closed"
    silenced_until: float | None = None  # a silence covers it until then (its status is still the true one)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    ts: float  # when it was stored (the stream ID)
    fields: dict[str, str]

    @property
    def at(self) -> float:
        """When it happened: its `at` field. Earlier than `ts` only for events the collector buffered through
        a store outage and wrote when the store was back."""
        try:
            return parse_iso(self.fields["at"]).timestamp()
        except (KeyError, ValueError):
            return self.ts


@dataclass(frozen=True, slots=True)
class CollectorView:
    replica: str
    heartbeat_age_s: float
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry of the notification delivery log."""

    id: str
    at: float
    webhook: str
    event: str
    outcome: str  # delivered | retry | gave_up | dropped
    incident_id: str
    root: str
    summary: str
    attempt: int
    status_code: int | None
    error: str | None
    message_id: str


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old what a page shows is: when it was read, and the newest collector write."""

    read_at: float
    last_write_age_s: float | None
    collector_stale: bool


@dataclass(frozen=True, slots=True)
class Overview:
    targets: list[TargetView]
    counts: dict[str, int]
    events: list[Event]
    collectors: list[CollectorView]
    last_write_age_s: float | None
    collector_stale: bool
    read_at: float
    problems: list[TargetView] = field(default_factory=list)  # not up, and not explained by an open incident
    incidents: list[incidents.Incident] = field(default_factory=list)
    folded: dict[str, list[str]] = field(default_factory=dict)  # failing dependent -> the open incidents' roots

    @property
    def freshness(self) -> Freshness:
        return Freshness(self.read_at, self.last_write_age_s, self.collector_stale)


def status_of(result: ProbeResult | None, interval_s: float, now: float,
              observed_ts: float | None = None) -> tuple[str, float | None]:
    if result is None:
        return "unknown", None
    age = max(0.0, now - (result.observed_ts if observed_ts is None else observed_ts))
    if age > STALE_INTERVALS * interval_s:
        return "stale", age
    return result.status, age


class ReadModel:
    def __init__(self, config: Config, client: redis.Redis | None = None) -> None:
        self.config = config
        self.keys = Keys(config.store.prefix)
        self.notify_keys = NotifyKeys(config.store.prefix)
        self.redis = client or sync_client(config.store.url, config.store.sentinel, timeout_s=2.0,
                                           client_name="hulk-ops-dashboard", cluster=config.store.cluster)
        self.memo: dict[str, Any] = {}  # per-process caches built over this model (see rollup.py)
        self._parsed: dict[str, tuple[bytes, ProbeResult, float]] = {}  # name -> (JSON, result, observed ts)
        self.memo_lock = threading.Lock()
        self.unreachable_since: float | None = None  # first failed read of the current store outage

    def memoized(self, key: str, build: Callable[[ReadModel], T]) -> T:
        """The per-process cache `key` built over this model, made once by `build(self)` (thread-safe)."""
        with self.memo_lock:
            value = self.memo.get(key)
            if value is None:
                value = self.memo[key] = build(self)
            return value

    def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)`, a failure of the store client raised as StoreUnavailable."""
        try:
            out = fn(*args, **kwargs)
        except CLIENT_ERRORS as exc:
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
            store = self.config.store
            switching = " (a failover may be under way)" if store.sentinel is not None or store.cluster else ""
            raise StoreUnavailable(
                f"cannot read the store at {where(store.url, store.sentinel, store.cluster)}{switching}: "
                f"{type(exc).__name__}: {exc}",
                since=self.unreachable_since,
            ) from None
        self.unreachable_since = None  # every page reads again by itself: the outage is over
        return out

    # -- latest state -------------------------------------------------------------------------
    def latest(self, names: Sequence[str] | None = None) -> dict[str, ProbeResult]:
        """Newest result per target: all of them, or only `names` (one HMGET)."""
        return {name: parsed[0] for name, parsed in self._latest(names).items()}

    def _latest(self, names: Sequence[str] | None) -> dict[str, tuple[ProbeResult, float]]:
        if names is None:
            pairs: Any = self._call(self.redis.hgetall, self.keys.latest).items()
        elif not names:
            return {}
        else:
            pairs = zip(names, self._call(self.redis.hmget, self.keys.latest, list(names)), strict=True)
        return self._parse(pairs)

    def _parse(self, pairs: Any) -> dict[str, tuple[ProbeResult, float]]:
        """JSON results -> (result, observed ts); a result unchanged since the last read is not parsed again."""
        out: dict[str, tuple[ProbeResult, float]] = {}
        cache = self._parsed
        for raw_name, blob in pairs:
            if blob is None:
                continue
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            known = cache.get(name)
            if known is not None and known[0] == blob:
                out[name] = (known[1], known[2])
                continue
            try:
                result = ProbeResult.from_dict(orjson.loads(blob))
                observed = result.observed_ts
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            cache[name] = (blob, result, observed)
            out[name] = (result, observed)
        return out

    def breakers(self) -> dict[str, dict[str, JSON]]:
        raw = self._call(self.redis.hgetall, self.keys.breakers)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def target_views(self, now: float | None = None, names: Sequence[str] | None = None) -> list[TargetView]:
        """Every configured target (or only `names`) with its derived status."""
        now = time.time() if now is None else now
        latest = self._latest(names)
        breakers = self.breakers()
        silenced = silences_mod.silenced_map(self.config.targets, self.silences(), now)
        wanted = None if names is None else set(names)
        views = []
        for target in self.config.targets:
            if wanted is not None and target.name not in wanted:
                continue
            result, observed = latest.get(target.name, (None, None))
            status, age = status_of(result, target.interval_s, now, observed)
            breaker = str(breakers.get(target.name, {}).get("state", "closed"))
            views.append(TargetView(target, result, status, age, breaker, silenced.get(target.name)))
        return views

    def freshness(self, now: float | None = None) -> Freshness:
        now = time.time() if now is None else now
        last_write = self._call(self.redis.get, self.keys.last_write)
        last_write_age = now - float(last_write) if last_write else None
        threshold = STALE_INTERVALS * min((t.interval_s for t in self.config.targets), default=15.0)
        collector_stale = bool(self.config.targets) and (last_write_age is None or last_write_age > max(threshold, 3.0))
        return Freshness(now, last_write_age, collector_stale)

    def depends_on(self) -> dict[str, list[str]]:
        return {t.name: list(t.depends_on) for t in self.config.targets}

    def incidents(self, views: Sequence[TargetView]) -> list[incidents.Incident]:
        """Open incidents over the given statuses, grouped by root cause (`hulk_ops.core.incidents.group`)."""
        return incidents.group({v.name: v.status for v in views}, self.depends_on())

    def overview(self, events: int = 15) -> Overview:
        now = time.time()
        views = self.target_views(now)
        counts = {s: 0 for s in DISPLAY_STATUSES}
        for view in views:
            counts[view.status] += 1
        fresh = self.freshness(now)
        order = {s: i for i, s in enumerate(DISPLAY_STATUSES)}
        open_incidents = self.incidents(views)
        folded = incidents.explained_by(open_incidents)  # shown under their incident, not again as problems
        problems = sorted((v for v in views if v.status != "up" and v.name not in folded),
                          key=lambda v: (order[v.status], v.name))
        return Overview(
            targets=views, counts=counts, events=self.events(events), collectors=self.collectors(now),
            last_write_age_s=fresh.last_write_age_s, collector_stale=fresh.collector_stale, read_at=now,
            problems=problems, incidents=open_incidents, folded=folded,
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
    def events(self, limit: int = 50, target: str | None = None, since: float | None = None,
               until: float | None = None) -> list[Event]:
        """Newest first: the global stream, or one target's; optionally only within [since, until]."""
        key = self.keys.target_events(target) if target else self.keys.events
        low = "-" if since is None else str(int(since * 1000))
        high = "+" if until is None else str(int(until * 1000))
        raw = self._call(self.redis.xrevrange, key, high, low, limit)
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

    def history_blobs(self, targets: Sequence[str], hours: Sequence[int]) -> list[bytes | None]:
        """Raw history chunks of many targets in one MGET, target-major: [t0h0, t0h1, ..., t1h0, ...]."""
        return self._mget([self.keys.history(t, h) for t in targets for h in hours])

    def metric_blobs(self, series: Sequence[tuple[str, str]], hours: Sequence[int]) -> list[bytes | None]:
        """Raw tracked-metric chunks of many (target, metric) pairs in one MGET, pair-major."""
        return self._mget([self.keys.metric(t, m, h) for t, m in series for h in hours])

    def metric_histories(self, series: Sequence[tuple[str, str]], start: float, end: float) -> list[np.ndarray]:
        """(ts, value) points of many (target, metric) series in [start, end]: one MGET, one decode."""
        from hulk_ops.dashboard.readmodel.chunks import decode_points_flat

        hours = hours_between(start, end)
        return decode_points_flat(self.metric_blobs(series, hours), hours, len(series), start, end)

    def metric_chunks(self, items: Sequence[tuple[str, str, int]]) -> list[bytes | None]:
        """Raw tracked-metric chunks of (target, metric, hour) items, in order, in one MGET."""
        return self._mget([self.keys.metric(t, m, h) for t, m, h in items])

    def values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Raw values of store keys built with `self.keys` (the long-range tier's summaries), in one MGET."""
        return self._mget(list(keys))

    def _mget(self, keys: list[str], batch: int = 20_000) -> list[bytes | None]:
        """MGET of keys of many targets. On a Redis Cluster they lie in many slots: one MGET per slot, each
        master's MGETs in one pipeline (`LazyCluster.mget_per_node`)."""
        out: list[bytes | None] = []
        for start in range(0, len(keys), batch):
            part = keys[start:start + batch]
            if isinstance(self.redis, LazyCluster):
                replies = self._call(self.redis.mget_per_node, part)
            else:
                replies = self._call(self.redis.mget, part)
            out.extend(cast("list[bytes | None]", replies))  # redis-py says bytes | str: the store's never decode
        return out

    def rollup_names(self, targets: Sequence[str]) -> dict[str, list[str]]:
        """Per target, its tracked metric names in the order the long-range summaries number them."""
        def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for target in targets:
                pipe.lrange(self.keys.rollup_names(target), 0, -1)
            return pipe.execute()

        replies = self._call(read) if targets else []
        return {t: [n.decode() for n in names] for t, names in zip(targets, replies, strict=True)}

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

    # -- silences and notifications -------------------------------------------------------------
    def silences(self) -> list[Silence]:
        """Every silence, from the config and from the dashboard (Redis), by start."""
        found = silences_mod.from_config(self.config)
        for blob in self._call(self.redis.hgetall, self.notify_keys.silences).values():
            try:
                found.append(Silence.from_dict(orjson.loads(blob)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return sorted(found, key=lambda s: (s.start, s.id))

    def deliveries(self, limit: int = 100) -> list[Delivery]:
        """The notification delivery log, newest first."""
        raw = self._call(self.redis.xrevrange, self.notify_keys.log, "+", "-", limit)
        out = []
        for entry_id, fields in raw:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.append(Delivery(
                id=entry_id.decode(), at=float(f.get("at") or 0), webhook=f.get("webhook", ""),
                event=f.get("event", ""), outcome=f.get("outcome", ""), incident_id=f.get("incident_id", ""),
                root=f.get("root", ""), summary=f.get("summary", ""), attempt=int(f.get("attempt") or 0),
                status_code=int(f["status_code"]) if f.get("status_code") else None, error=f.get("error") or None,
                message_id=f.get("message_id", ""),
            ))
        return out

    def outbox(self) -> dict[str, int]:
        """Undelivered messages per configured webhook."""
        names = [w.name for w in self.config.notify.webhooks]
        return {n: int(self._call(self.redis.llen, self.notify_keys.queue(n))) for n in names}

    def notified_incidents(self) -> list[dict[str, JSON]]:
        """Incidents the notifier tracks (pending or open), as it persisted them."""
        raw = self._call(self.redis.hgetall, self.notify_keys.incidents)
        return sorted((orjson.loads(v) for v in raw.values()), key=lambda d: d.get("first_seen", 0))
