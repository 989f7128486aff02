"""NATS JetStream stream purge (nats-py): the whole stream, one subject filter, or keep the newest N.

Dry-run: messages that would go (exact, from the server's stream state and per-subject counts),
their bytes (exact for a whole purge; for a filter or keep, estimated from the stream's mean message
size and marked so) and every consumer whose pending work goes with them. The purge itself is the
JetStream API request `$JS.API.STREAM.PURGE.<stream>`, whose reply carries the number actually
purged (nats-py's `purge_stream` keeps only the success flag); that number goes to the audit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js.api import DEFAULT_PREFIX

from hulk_ops.actions.executors.base import ActionFailed, ActionRefused, Executor
from hulk_ops.actions.model import Preview, PurgeStream
from hulk_ops.core.model import JSON
from hulk_ops.probes.base import describe_error


class NatsPurge(Executor[PurgeStream]):
    actions = ("purge_stream",)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[NATS]:
        t = self.target
        try:
            client = await nats.connect(
                servers=[t.url], name="hulk-ops-action", connect_timeout=min(t.timeout_s, self.settings.timeout_s),
                allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0,
                user=getattr(t, "user", None), password=_secret(getattr(t, "password", None)),
                token=_secret(getattr(t, "token", None)),
            )
        except Exception as exc:
            raise ActionFailed(self.redact(f"cannot reach NATS {t.name}: "
                                           f"{describe_error(exc, t.url, t.timeout_s)}")) from None
        try:
            yield client
        except (nats.errors.Error, TimeoutError) as exc:
            raise ActionFailed(self.redact(f"NATS {t.name}: {type(exc).__name__}: {exc}")) from None
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def preview(self, request: PurgeStream) -> Preview:
        async with self._client() as client:
            js = client.jetstream(timeout=self.settings.timeout_s)
            info = await _stream_info(js, request.stream, self.target.name)
            state = info.state
            matched = state.messages
            if request.subject:
                filtered = await js.stream_info(request.stream, subjects_filter=request.subject)
                matched = sum((filtered.state.subjects or {}).values())
            going = max(0, matched - request.keep) if request.keep else matched
            exact_bytes = not request.subject and not request.keep
            mean = state.bytes / state.messages if state.messages else 0.0
            going_bytes = state.bytes if exact_bytes else round(going * mean)
            consumers = await js.consumers_info(request.stream) if state.consumer_count else []
        before = {"messages": state.messages, "bytes": state.bytes, "first_seq": state.first_seq,
                  "last_seq": state.last_seq, "consumers": {c.name: _consumer_state(c) for c in consumers}}
        hit = [c for c in consumers if _affected(c, request.subject) and (c.num_pending or c.num_ack_pending)]
        radius = [f"consumer {c.name} loses up to {_lost_bound(c, request, going)} undelivered message(s)"
                  f" ({c.num_ack_pending or 0} awaiting ack)" for c in hit]
        what = f"subject {request.subject}" if request.subject else "all subjects"
        keep = f", keeping the newest {request.keep}" if request.keep else ""
        approx = "" if exact_bytes else "≈"
        return Preview(
            summary=f"purge {going} of {state.messages} message(s) ({approx}{_size(going_bytes)}) from stream "
                    f"{request.stream} on {what}{keep}",
            object_name=request.stream,
            before=before,
            expected={"purged_messages": going, "purged_bytes": going_bytes, "bytes_estimated": not exact_bytes,
                      "remaining_messages": state.messages - going},
            blast_radius=radius or ["no consumer has pending work on these messages"],
        )

    async def _execute(self, request: PurgeStream, preview: Preview) -> dict[str, JSON]:
        body: dict[str, Any] = {}
        if request.subject:
            body["filter"] = request.subject
        if request.keep:
            body["keep"] = request.keep
        async with self._client() as client:
            subject = f"{DEFAULT_PREFIX}.STREAM.PURGE.{request.stream}"
            reply = await client.request(subject, orjson.dumps(body), timeout=self.settings.timeout_s)
            data = orjson.loads(reply.data)
            if "error" in data or not data.get("success"):
                error = data.get("error", {})
                raise ActionFailed(f"purge refused by the server: {error.get('description', data)}")
            js = client.jetstream(timeout=self.settings.timeout_s)
            info = await _stream_info(js, request.stream, self.target.name)
            consumers = await js.consumers_info(request.stream) if info.state.consumer_count else []
        purged = int(data.get("purged", 0))
        return {
            "purged": purged,
            "matches_preview": purged == preview.expected.get("purged_messages"),
            "messages": info.state.messages,
            "bytes": info.state.bytes,
            "consumers": {c.name: _consumer_state(c) for c in consumers},
        }


async def _stream_info(js: Any, stream: str, target: str) -> Any:
    try:
        return await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        raise ActionRefused(f"stream {stream!r} not found on {target}") from None
    except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
        raise ActionRefused(f"JetStream is not enabled on {target}") from None


def _lost_bound(consumer: Any, request: PurgeStream, going: int) -> int:
    """Upper bound of a consumer's undelivered messages the purge takes away.

    A filtered purge can move a consumer whose own filter is wider than the purge's past the purged
    range, skipping messages on other subjects too (seen on nats-server 2.9): the bound is then all of
    its pending. Otherwise a consumer cannot lose more than the purge removes.
    """
    pending = consumer.num_pending or 0
    if request.subject and _filters(consumer) != [request.subject]:
        return pending
    return min(pending, going)


def _consumer_state(consumer: Any) -> dict[str, int]:
    return {"pending": consumer.num_pending or 0, "ack_pending": consumer.num_ack_pending or 0}


def _affected(consumer: Any, subject: str | None) -> bool:
    if subject is None:
        return True
    return any(subjects_overlap(f, subject) for f in _filters(consumer))


def _filters(consumer: Any) -> list[str]:
    config = consumer.config
    return list(getattr(config, "filter_subjects", None) or []) or [config.filter_subject or ">"]


def subjects_overlap(a: str, b: str) -> bool:
    """Whether two subject patterns (with `*` and `>`) can match a common subject."""
    ta, tb = a.split("."), b.split(".")
    for x, y in zip(ta, tb, strict=False):
        if x == ">" or y == ">":
            return True
        if x != y and "*" not in (x, y):
            return False
    return len(ta) == len(tb)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
