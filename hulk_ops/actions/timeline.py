"""Actions on the incident timeline: each final outcome is also an event in the store's event stream.

The audit log is the record; this is a courtesy copy for the dashboard's timeline, so a Redis
failure here is logged and never changes the action's result.
"""

from __future__ import annotations

import structlog

from hulk_ops.actions.model import ActionResult, Principal
from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.redis_client import async_client
from hulk_ops.core.config import SentinelSettings
from hulk_ops.core.model import iso, utcnow

EVENTS_MAX = 100_000
TARGET_EVENTS_MAX = 1_000
log = structlog.get_logger("hulk_ops.actions")


class Timeline:
    def __init__(self, redis_url: str, prefix: str, sentinel: SentinelSettings | None = None,
                 cluster: bool = False) -> None:
        self.redis_url = redis_url
        self.sentinel = sentinel
        self.cluster = cluster
        self.keys = Keys(prefix)

    async def emit(self, result: ActionResult, principal: Principal, kind: str) -> None:
        fields = {
            "source": "action",
            "type": "action",
            "target": result.target,
            "kind": kind,
            "action": result.action,
            "outcome": result.status,
            "user": principal.name,
            "object": result.object_name,
            "summary": (result.preview.summary if result.preview else result.message)[:500],
            "error": (result.error or "")[:500],
            "request_id": result.request_id,
            "at": iso(utcnow()),
        }
        client = async_client(self.redis_url, self.sentinel, timeout_s=2.0, client_name="hulk-ops-actions",
                              cluster=self.cluster)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.xadd(self.keys.events, fields, maxlen=EVENTS_MAX, approximate=True)  # type: ignore[arg-type]
            pipe.xadd(self.keys.target_events(result.target), fields,  # type: ignore[arg-type]
                      maxlen=TARGET_EVENTS_MAX, approximate=True)
            await pipe.execute()
        except Exception as exc:  # the audit log holds the record; the timeline copy is best effort
            log.warning("timeline_write_failed", request_id=result.request_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            await client.aclose()
