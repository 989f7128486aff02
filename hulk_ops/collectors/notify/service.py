"""The notifier the collector runs: evaluates incidents from the store and delivers the outbox.

One replica of an installation holds the notifier (a Redis lock renewed every evaluation, TTL
`LEADER_TTL_S`), so N collector replicas still send one notification per incident. Statuses are
read from the store's latest results (every replica writes there), silences from the config and
from Redis. An evaluation that cannot persist its state and messages is discarded whole and the
state is reloaded, so a notice is never lost between the tracker and the outbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.notify import digest, payloads
from hulk_ops.collectors.notify.burnwatch import BurnWatch
from hulk_ops.collectors.notify.delivery import Deliverer, drain
from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.collectors.notify.tracker import IncidentTracker, Notice, Policy
from hulk_ops.collectors.store import STORE_ERRORS
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core import burn
from hulk_ops.core import silences as silences_mod
from hulk_ops.core.config import Config
from hulk_ops.core.incidents import SEVERITY
from hulk_ops.core.observe_config import WebhookSettings
from hulk_ops.observe import tracing

log = structlog.get_logger("hulk_ops.notify")
LEADER_TTL_S = 5.0
BURN_EVERY_S = 30.0  # error-budget burn alerts are evaluated this often (their shortest window is 5 min)
DELIVERY_TICK_S = 0.2
_STORE_DOWN: tuple[type[BaseException], ...] = (TimeoutError, *STORE_ERRORS)


class Notifier:
    def __init__(self, config: Config, metrics: CollectorMetrics, replica: str,
                 store: NotifyStore | None = None) -> None:
        n = config.notify
        self.config = config
        self.metrics = metrics
        self.replica = replica
        self.store = store or NotifyStore(config.store.url, config.store.prefix, n.outbox_max, n.log_max,
                                            sentinel=config.store.sentinel, cluster=config.store.cluster)
        self.policy = Policy(n.group_wait_s, n.update_interval_s)
        self.depends_on = {t.name: list(t.depends_on) for t in config.targets}
        self.runbooks = {t.name: t.runbook_url or n.runbook_url for t in config.targets}
        self.targets = {t.name: t for t in config.targets}
        self.config_silences = silences_mod.from_config(config)
        self.tracker: IncidentTracker | None = None
        self.leader = False
        self.objectives = {t.name: config.slo_for(t).availability for t in config.targets}
        self.burnwatch: BurnWatch | None = None
        self.burn_state: dict[str, dict[str, Any]] | None = None  # loaded with the tracker
        self.burn_at = 0.0
        self.outbox: dict[str, int] = {}
        self.posted: dict[tuple[str, str], float] = {}  # (webhook, incident id) -> last post, for re-posts
        self.last_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            deliverer = Deliverer(self.store, self.config.notify.retry, self.metrics, session)
            loops = [self._evaluate_loop(stop), self._deliver_loop(stop, deliverer)]
            await asyncio.gather(*loops)

    async def close(self) -> None:
        try:
            async with asyncio.timeout(0.5):
                if self.leader:
                    await self.store.release_leader(self.replica)
                await self.store.close()
        except _STORE_DOWN:
            pass

    async def _evaluate_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(max(2.0, self.config.notify.evaluate_s)):
                    await self.evaluate(time.time())
                    if self.leader:
                        await digest.maybe_send(self.config, self.store, time.time())
                self.last_error = None
            except _STORE_DOWN as exc:
                self._lost(exc)
            except Exception as exc:  # a bug here must not silence every later incident
                log.exception("notifier_crashed")
                self._lost(exc)
            await _sleep(stop, self.config.notify.evaluate_s)

    async def _deliver_loop(self, stop: asyncio.Event, deliverer: Deliverer) -> None:
        while not stop.is_set():
            if self.leader:
                try:
                    await asyncio.gather(*(drain(deliverer, w) for w in self.config.notify.webhooks))
                    for webhook in self.config.notify.webhooks:
                        self.outbox[webhook.name] = await self.store.queue_length(webhook.name)
                        self.metrics.notify_outbox.labels(webhook.name).set(self.outbox[webhook.name])
                except STORE_ERRORS as exc:
                    self._lost(exc)
                except Exception as exc:
                    log.exception("delivery_crashed")
                    self._lost(exc)
            await _sleep(stop, DELIVERY_TICK_S)

    def _lost(self, exc: BaseException) -> None:
        if self.last_error is None:
            log.warning("notifier_store_error", error=f"{type(exc).__name__}: {exc}")
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.tracker = None  # reload the persisted state: what was not committed did not happen

    async def evaluate(self, now: float) -> list[Notice]:
        """One evaluation (if this replica holds the notifier): notices are queued with the new state."""
        self.leader = await self.store.acquire_leader(self.replica, LEADER_TTL_S)
        if not self.leader:
            self.tracker, self.posted = None, {}
            return []
        if self.tracker is None:
            self.tracker = IncidentTracker(self.depends_on, self.policy, await self.store.load_state(
                [w.name for w in self.config.notify.webhooks]))
            self.burn_state = await self.store.load_burn()
        latest = await self.store.latest()
        names = {t.name for t in self.config.targets}
        statuses = {n: r.get("status", "unknown") for n, r in latest.items() if n in names}
        silences = [*self.config_silences, *(await self.store.silences())]
        silenced = silences_mod.silenced_map(self.config.targets, silences, now)
        before = {k: v.to_dict() for k, v in self.tracker.state.items()}
        with tracing.span("notify.evaluate", failing=sum(s in ("down", "degraded") for s in statuses.values()),
                          silenced=len(silenced)) as span:
            notices = self.tracker.step(statuses, now, lambda name: name in silenced)
            self.metrics.incidents_open.set(sum(1 for t in self.tracker.state.values() if t.opened))
            after = {k: v.to_dict() for k, v in self.tracker.state.items()}
            burn_state, burn_notices = await self._burn(statuses, silenced, now)
            repeats = self._repeats(notices, now, lambda name: name in silenced)
            if after == before and not notices and not repeats and burn_state is None:
                return []
            messages = await self._messages(notices, latest, now)
            messages += await self._messages([n for _, n in repeats], latest, now, [w for w, _ in repeats])
            messages += await self._burn_messages(burn_notices, latest, now)
            changed = {k: v for k, v in self.tracker.state.items() if before.get(k) != after[k]}
            try:
                dropped = await self.store.commit(changed, [k for k in before if k not in after], messages,
                                                  burn=burn_state)
                if burn_state is not None:
                    self.burn_state = burn_state
            except BaseException:
                self.tracker = None
                raise
            tracing.annotate(span, notices=len(notices), messages=len(messages))
        for notice in notices:
            log.info("incident_" + notice.event, incident_id=notice.incident_id, root=notice.root,
                     status=notice.status, dependents=list(notice.dependents), merged_into=list(notice.merged_into))
        for message in dropped:
            await self._dropped(message)
        return notices

    async def _burn(self, statuses: dict[str, str], silenced: Any, now: float
                    ) -> tuple[dict[str, dict[str, Any]] | None, list[burn.BurnNotice]]:
        """Every BURN_EVERY_S: the burn alerts to send and the new open set (None: nothing changed). A silenced
        target does not burn."""
        if now - self.burn_at < BURN_EVERY_S or self.burn_state is None:
            return None, []
        self.burn_at = now
        if self.burnwatch is None:
            self.burnwatch = BurnWatch(self.store.redis, Keys(self.config.store.prefix))
        names = [n for n in self.objectives if n not in silenced]
        fired = burn.firing(await self.burnwatch.counts(names, now), self.objectives)
        state, notices = burn.step(fired, statuses, self.depends_on, self.burn_state, now)
        return (state if state != self.burn_state or notices else None), notices

    async def _burn_messages(self, notices: list[burn.BurnNotice], latest: dict[str, dict[str, Any]],
                             now: float) -> list[dict[str, Any]]:
        pairs = []
        for notice in notices:
            target = self.targets.get(notice.root)
            labels, kind = (dict(target.labels), target.kind) if target is not None else ({}, "")
            severity = "critical" if notice.severity == "page" else "warning"
            pairs += [(notice, w) for w in self.config.notify.webhooks if w.match.matches(labels, kind, severity)]
        ids = await self.store.next_ids(len(pairs)) if pairs else []
        out = []
        for notice, webhook in pairs:
            members = {name: _member(latest.get(name)) for name in (notice.root, *notice.targets)}
            message_id = f"{notice.alert_id}:{notice.event}:{ids.pop(0)}"
            body = payloads.render_burn(notice, webhook.format, members, message_id,
                                        self.config.notify.dashboard_url, self.runbooks.get(notice.root))
            out.append({"id": message_id, "webhook": webhook.name, "event": notice.event,
                        "incident_id": notice.alert_id, "root": notice.root,
                        "summary": payloads.burn_summary(notice), "created_at": now, "attempts": 0,
                        "next_at": now, "body": body})
        return out

    def _repeats(self, notices: list[Notice], now: float,
                 silenced: Callable[[str], bool]) -> list[tuple[WebhookSettings, Notice]]:
        """Open incidents due to be posted again to each Alertmanager webhook (its alerts expire otherwise)."""
        assert self.tracker is not None
        hooks = [w for w in self.config.notify.webhooks if w.format == "alertmanager"]
        for notice in notices:
            for webhook in self.recipients(notice, hooks):
                self.posted[(webhook.name, notice.incident_id)] = now
        open_ids = {t.id for t in self.tracker.state.values()}
        self.posted = {k: v for k, v in self.posted.items() if k[1] in open_ids}
        due = []
        for notice in self.tracker.repeats(now, silenced):
            for webhook in self.recipients(notice, hooks):
                if self.outbox.get(webhook.name, 0) > 0:
                    continue  # messages wait (the receiver fails): a re-post would only queue behind them
                key = (webhook.name, notice.incident_id)
                if now - self.posted.setdefault(key, now) >= webhook.resend_s:
                    self.posted[key] = now
                    due.append((webhook, notice))
        return due

    async def _messages(self, notices: list[Notice], latest: dict[str, dict[str, Any]], now: float,
                        only: list[WebhookSettings] | None = None) -> list[dict[str, Any]]:
        """One message per notice and webhook it is routed to (`only`: the webhook of each notice, same order)."""
        pairs = ([(n, w) for n in notices for w in self.routed(n)] if only is None
                 else list(zip(notices, only, strict=True)))
        ids = await self.store.next_ids(len(pairs)) if pairs else []
        out = []
        for notice, webhook in pairs:
            members = {name: _member(latest.get(name)) for name in (notice.root, *notice.dependents)}
            message_id = f"{notice.incident_id}:{notice.event}:{ids.pop(0)}"
            body = payloads.render(notice, webhook.format, members, message_id, self.config.notify.dashboard_url,
                                   self.runbooks.get(notice.root), 4 * webhook.resend_s)
            out.append({"id": message_id, "webhook": webhook.name, "event": notice.event,
                        "incident_id": notice.incident_id, "root": notice.root,
                        "summary": payloads.summary(notice), "created_at": now, "attempts": 0,
                        "next_at": now, "body": body})
        return out

    def recipients(self, notice: Notice, webhooks: list[WebhookSettings] | None = None) -> list[WebhookSettings]:
        """The webhooks (of `webhooks`, default all) this notice goes to: those told about the incident before,
        and, unless it closes an incident they were told about, those whose `match` takes its root cause now."""
        webhooks = self.config.notify.webhooks if webhooks is None else webhooks
        target = self.targets.get(notice.root)
        labels, kind = (dict(target.labels), target.kind) if target is not None else ({}, "")
        status = notice.previous_status if notice.closes and notice.previous_status else notice.status
        severity = SEVERITY.get(status)
        if notice.closes and notice.routed:
            return [w for w in webhooks if w.name in notice.routed]
        return [w for w in webhooks if w.name in notice.routed or w.match.matches(labels, kind, severity)]

    def routed(self, notice: Notice) -> list[WebhookSettings]:
        """`recipients`, remembered on the tracked incident so its later notices reach the same webhooks."""
        chosen = self.recipients(notice)
        tracked = self.tracker.state.get(notice.root) if self.tracker is not None else None
        if tracked is not None and tracked.id == notice.incident_id:
            tracked.routed = sorted({*tracked.routed, *(w.name for w in chosen)})
        return chosen

    async def _dropped(self, message: dict[str, Any]) -> None:
        self.metrics.notifications.labels(message["webhook"], message.get("event", "?"), "dropped").inc()
        log.warning("notification_dropped", webhook=message["webhook"], message_id=message["id"])
        await self.store.log({"at": round(time.time(), 3), "webhook": message["webhook"], "message_id": message["id"],
                              "incident_id": message.get("incident_id"), "event": message.get("event"),
                              "root": message.get("root"), "summary": message.get("summary"), "outcome": "dropped",
                              "attempt": message.get("attempts", 0), "status_code": None,
                              "error": "outbox full: oldest message dropped"})

    def heartbeat(self) -> dict[str, Any]:
        return {"notify_leader": self.leader, "notify_outbox": dict(self.outbox), "notify_error": self.last_error}


def _member(result: dict[str, Any] | None) -> dict[str, Any]:
    if not result:
        return {"status": "unknown", "kind": None, "error": None}
    return {"status": result.get("status"), "kind": result.get("kind"), "error": result.get("error"),
            "observed_at": result.get("observed_at")}


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
