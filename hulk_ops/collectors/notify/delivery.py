"""Webhook delivery from the Redis outbox: in order per webhook, retried with backoff, logged.

The head of a webhook's queue is POSTed (JSON, `X-Hulk-Ops-Message-Id` so receivers can drop a
repeat); 2xx removes it, 408/429/5xx and network errors keep it with its next try at
`backoff_s * 2^(attempts-1)` (capped at `backoff_max_s`), other 4xx give up at once (retrying a
refused body changes nothing), and so does a message older than `max_age_s`. Later messages of the
same webhook wait behind the head, so a resolve never overtakes its open. Every outcome goes to
the delivery log. Killing the process mid-retry loses nothing: the head, its attempts and its next
try are in Redis.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import structlog

from hulk_ops.collectors.notify.store import NotifyStore
from hulk_ops.collectors.telemetry import CollectorMetrics
from hulk_ops.core.observe_config import RetrySettings, WebhookSettings
from hulk_ops.observe import tracing
from hulk_ops.probes.base import host_port

log = structlog.get_logger("hulk_ops.notify")
RETRY_CODES = {408, 425, 429}


class Deliverer:
    def __init__(self, store: NotifyStore, retry: RetrySettings, metrics: CollectorMetrics,
                 session: aiohttp.ClientSession) -> None:
        self.store = store
        self.retry = retry
        self.metrics = metrics
        self.session = session

    async def deliver_due(self, webhook: WebhookSettings, now: float | None = None) -> bool:
        """Try the head of this webhook's queue if it is due; True when the queue moved (try again now)."""
        head = await self.store.head(webhook.name)
        if head is None:
            return False
        raw, message = head
        now = time.time() if now is None else now
        if float(message.get("next_at", 0)) > now:
            return False
        attempt = int(message.get("attempts", 0)) + 1
        with tracing.span("notify.deliver", webhook=webhook.name, event=message.get("event"),
                          incident_id=message.get("incident_id"), attempt=attempt) as span:
            ok, code, error = await self._post(webhook, message)
            tracing.annotate(span, status_code=code, delivered=ok)
            if not ok:
                tracing.fail(span, error)
        if ok:
            if await self.store.pop_head(webhook.name, raw):
                await self._log(webhook, message, "delivered", attempt, code, None)
            return True
        too_old = now - float(message.get("created_at", now)) >= self.retry.max_age_s
        if (code is not None and 400 <= code < 500 and code not in RETRY_CODES) or too_old:
            if await self.store.pop_head(webhook.name, raw):
                await self._log(webhook, message, "gave_up", attempt, code, error)
                log.warning("notification_given_up", webhook=webhook.name, message_id=message["id"],
                            attempts=attempt, error=error)
            return True
        delay = min(self.retry.backoff_s * 2 ** (attempt - 1), self.retry.backoff_max_s)
        updated = {**message, "attempts": attempt, "next_at": now + delay, "last_error": error}
        if await self.store.update_head(webhook.name, raw, updated):
            await self._log(webhook, message, "retry", attempt, code, error, next_in_s=round(delay, 3))
        return False

    async def _post(self, webhook: WebhookSettings, message: dict[str, Any]) -> tuple[bool, int | None, str | None]:
        url = webhook.url.get_secret_value()
        headers = {"Content-Type": "application/json", "User-Agent": "hulk-ops",
                   "X-Hulk-Ops-Message-Id": str(message["id"]),
                   **{k: v.get_secret_value() for k, v in webhook.headers.items()}}
        try:
            async with self.session.post(url, data=orjson.dumps(message["body"]), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=webhook.timeout_s)) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return True, response.status, None
                return False, response.status, f"HTTP {response.status} {response.reason or ''}".strip()
        except TimeoutError:
            return False, None, f"timed out after {webhook.timeout_s:.1f} s"
        except aiohttp.ClientConnectorError as exc:
            reason = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else "cannot connect"
            return False, None, f"{reason} ({host_port(url)})"
        except (aiohttp.ClientError, OSError) as exc:
            return False, None, f"{type(exc).__name__} ({host_port(url)})"

    async def _log(self, webhook: WebhookSettings, message: dict[str, Any], outcome: str, attempt: int,
                   code: int | None, error: str | None, **extra: Any) -> None:
        self.metrics.notifications.labels(webhook.name, message.get("event", "?"), outcome).inc()
        await self.store.log({
            "at": round(time.time(), 3), "webhook": webhook.name, "message_id": message["id"],
            "incident_id": message.get("incident_id"), "event": message.get("event"), "root": message.get("root"),
            "summary": message.get("summary"), "outcome": outcome, "attempt": attempt, "status_code": code,
            "error": error, **extra,
        })


async def drain(deliverer: Deliverer, webhook: WebhookSettings, limit: int = 50) -> None:
    """Deliver due messages of one webhook in order until one is not due (or fails), at most `limit`."""
    for _ in range(limit):
        if not await deliverer.deliver_due(webhook):
            return
        await asyncio.sleep(0)
