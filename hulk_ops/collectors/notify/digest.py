"""The radar's end-of-life digest: once a day, one low-severity message listing the live versions that are past
their end of life or within `radar.eol_warning_days` of it (`radar.digest`, off by default).

The notifier's leader sends it after `radar.digest.hour_utc` (UTC): the day is claimed in the store
(`P radar:digest:<YYYY-MM-DD>`, SET NX, kept 3 days), so replicas and restarts send it once a day. A day with
nothing to flag sends nothing. It goes through the same outbox, retries and delivery log as incidents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from hulk_ops.collectors.notify.payloads import ts_iso
from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.core.config import Config
from hulk_ops.core.radar import EolFlag, RadarError, RadarFile, eol_flags, load_radar, radar_entries, radar_path

log = structlog.get_logger("hulk_ops.notify")

CLAIM_TTL_S = 3 * 86_400


@dataclass(frozen=True, slots=True)
class _Version:
    version: str | None


@dataclass(frozen=True, slots=True)
class _Seen:
    name: str
    kind: str
    result: _Version | None


def flags_now(config: Config, radar: RadarFile, latest: dict[str, dict[str, Any]], now: float) -> list[EolFlag]:
    """The flags the radar page shows, from the store's newest results (the versions the probes saw)."""
    seen = []
    for target in config.targets:
        raw = latest.get(target.name)
        seen.append(_Seen(target.name, target.kind, _Version(raw.get("version")) if raw else None))
    today = datetime.fromtimestamp(now, UTC).date()
    return eol_flags(radar_entries(radar, seen), today, config.radar.eol_warning_days)


async def maybe_send(config: Config, store: NotifyStore, now: float) -> list[dict[str, Any]]:
    """Queue today's digest if it is due and not sent yet; returns the messages queued."""
    digest = config.radar.digest
    if not digest.enabled or not config.notify.webhooks:
        return []
    moment = datetime.fromtimestamp(now, UTC)
    if moment.hour < digest.hour_utc:
        return []
    day = moment.date().isoformat()
    try:
        radar = load_radar(radar_path(config))
    except RadarError as exc:  # the page shows the same error; the incident notifications carry on
        log.warning("radar_digest_skipped", error=str(exc))
        return []
    claimed = await store.redis.set(store.store_keys.radar_digest(day), b"1", nx=True, ex=CLAIM_TTL_S)
    if not claimed:
        return []
    flags = flags_now(config, radar, await store.latest(), now)
    if not flags:
        return []
    wanted = set(digest.webhooks) or {w.name for w in config.notify.webhooks}
    webhooks = [w for w in config.notify.webhooks if w.name in wanted]
    ids = await store.next_ids(len(webhooks))
    messages = []
    for webhook, seq in zip(webhooks, ids, strict=True):
        message_id = f"radar-digest:{day}:{seq}"
        messages.append({"id": message_id, "webhook": webhook.name, "event": "digest", "incident_id": None,
                         "root": None, "summary": summary(flags), "created_at": now, "attempts": 0, "next_at": now,
                         "body": render(flags, webhook.format, day, now, config.notify.dashboard_url)})
    await store.commit({}, [], messages)
    return messages


def summary(flags: list[EolFlag]) -> str:
    past = sum(1 for f in flags if f.past)
    return (f"Radar: {past} live version(s) past end of life, {len(flags) - past} within the warning window")


def render(flags: list[EolFlag], fmt: str, day: str, now: float, dashboard_url: str | None) -> Any:
    lines = [f.text() for f in flags]
    if fmt == "slack":
        text = f":calendar: {summary(flags)} ({day})"
        return {"text": text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(f"• {line}" for line in lines)[:2900]}}]}
    if fmt == "alertmanager":  # Alertmanager API v2: a list of alerts, each ending unless re-sent tomorrow
        ends = ts_iso((datetime.fromtimestamp(now, UTC) + timedelta(hours=25)).timestamp())
        return [{"labels": {"alertname": "HulkOpsVersionEndOfLife", "severity": "info", "component": f.component,
                            "version": f.version},
                 "annotations": {"summary": f.text(), "runbook_url": "", "dashboard": (dashboard_url or "") + "/radar"},
                 "startsAt": ts_iso(now), "endsAt": ends,
                 "generatorURL": (dashboard_url or "") + "/radar",
                 } for f in flags]
    return {"version": 1, "event": "digest", "kind": "radar_eol", "severity": "info", "day": day,
            "summary": summary(flags), "dashboard_url": dashboard_url,
            "flags": [{"component": f.component, "version": f.version, "cycle": f.cycle, "eol": f.eol.isoformat(),
                       "days_left": f.days_left, "past": f.past, "targets": list(f.targets)} for f in flags],
            "id": hashlib.sha256(orjson.dumps(lines)).hexdigest()[:16]}
