"""NATS JetStream probe (nats-py).

Latency is the connection's PING/PONG round trip; a connection that closes mid-cycle (a reset)
ends the cycle at once. Metrics: js.memory_bytes, js.storage_bytes, js.streams, js.consumers,
js.max_memory_bytes / js.max_storage_bytes and js.memory_used_pct /
js.storage_used_pct (when the account has limits); per stream stream.<s>.messages, .bytes,
.consumers, .max_msgs / .max_bytes and .used_pct (when limited); per consumer
consumer.<s>.<c>.pending (not yet delivered: the lag), .ack_pending, .redelivered, .waiting.
Over TLS (tls:// or a tls: block; nats-py upgrades after the server's INFO): tls.cert_expiry_days and
tls.cert_expired, read from the probe's own connection. Down when JetStream is expected (the default)
and not enabled. Account and stream info are read every cycle (not every Nth): usage, messages and consumer
lag change between cycles. They are read through the JetStream JSON API (`$JS.API.INFO`, `.STREAM.LIST`,
`.CONSUMER.LIST.<stream>`, every page) on the client's own inbox, sent with the PING.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import Field, SecretStr

from hulk_ops.core import breach
from hulk_ops.core.catalog import Catalog, MetricSpec
from hulk_ops.core.kind import CapacityItem, limit_of
from hulk_ops.core.model import ProbeResult
from hulk_ops.core.tls_config import TlsTarget
from hulk_ops.probes import tls
from hulk_ops.probes.base import Measurement, Probe, ProbeFailure
from hulk_ops.probes.lazy import lazy_module

if TYPE_CHECKING:
    import nats
    import nats.errors
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg
else:
    nats = lazy_module("nats")  # with aiohttp (its websocket transport): a quarter of a second to import


class Settings(TlsTarget):
    kind: Literal["nats"]
    expect_jetstream: bool = True
    streams: list[str] = Field(default_factory=list, description="streams to report (default: all)")
    max_streams: int = Field(100, ge=1, le=10_000)
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None


class NatsProbe(Probe[Settings, "NATS"]):
    kind = "nats"

    @property
    def transient(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (ConnectionResetError, BrokenPipeError, nats.errors.ConnectionClosedError)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lost: dict[NATS, asyncio.Future[None]] = {}  # per client: done when its connection closes
        self._replies: dict[NATS, Replies] = {}  # per client: its JetStream API replies, by inbox subject

    async def _connect(self) -> NATS:
        s = self.settings

        seen: list[Exception] = []

        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def remember(exc: Exception) -> None:  # errors surface through the calls themselves
            seen.append(exc)

        async def closed() -> None:
            if not lost.done():
                lost.set_result(None)

        context = None
        if s.tls is not None or s.url.startswith("tls://"):
            context = await asyncio.to_thread(tls.client_context, s.tls)
        try:
            client = await nats.connect(
                servers=[s.url],
                name="hulk-ops-probe",
                connect_timeout=s.timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=1,  # nats-py: 0 would mean "forever" while selecting a server
                reconnect_time_wait=0,
                error_cb=remember,
                disconnected_cb=closed,
                closed_cb=closed,
                user=s.user,
                password=s.password.get_secret_value() if s.password else None,
                token=s.token.get_secret_value() if s.token else None,
                tls=context,
                tls_hostname=s.tls.server_name if s.tls else None,
            )
        except nats.errors.NoServersError as exc:
            if seen:  # the pool gives up without saying why; the callback heard the real reason
                raise seen[-1] from exc
            raise
        self._lost[client] = lost
        replies = Replies(client.new_inbox())
        try:
            await client.subscribe(f"{replies.inbox}.*", cb=replies.deliver)
        except BaseException:
            await client.close()
            raise
        self._replies[client] = replies
        return client

    async def _close(self, client: NATS) -> None:
        self._lost.pop(client, None)
        self._replies.pop(client, None)
        await client.close()

    async def _measure(self, client: NATS) -> Measurement:
        """Measure, but stop as soon as the connection dies: nats-py leaves a pending request waiting for its
        timeout when its reader hits a reset, so without this a reset would read "timed out" after timeout_s."""
        if not client.is_connected:
            raise nats.errors.ConnectionClosedError
        lost = self._lost.get(client)
        task = asyncio.current_task()
        if lost is None or task is None:
            return await self._measure_connected(client)
        # the connection's end cancels this task (a callback: no watcher task and wait per probe); the cancel is
        # told from any other (a timeout, a shutdown) by the task's cancel count
        watching = True

        def cut(_lost: asyncio.Future[None]) -> None:
            if watching:
                task.cancel()

        lost.add_done_callback(cut)
        try:
            return await self._measure_connected(client)
        except asyncio.CancelledError:
            if not lost.done() or task.uncancel() > 0:  # not (only) the connection's end
                raise
        finally:
            watching = False
            lost.remove_done_callback(cut)
        error = client.last_error
        if isinstance(error, Exception):
            raise error
        raise nats.errors.ConnectionClosedError

    async def _measure_connected(self, client: NATS) -> Measurement:
        api = self._api(client)
        api.abandon()  # what an earlier cycle left waiting (it timed out): its replies are of no use now
        # the JetStream requests go out with the PING: nats-py writes the PING at once and the requests in
        # its flusher's next write, so the round trip timed is the PING's alone, and the three replies share
        # the wake-ups of one exchange (nats-py's request() is a write and a wait per request)
        account = await api.ask(client, f"{API}.INFO")
        listed = await api.ask(client, f"{API}.STREAM.LIST", b'{"offset":0}')
        started = time.perf_counter()
        await client.flush(timeout=max(1, int(self.settings.timeout_s)))
        rtt_ms = (time.perf_counter() - started) * 1000
        version = str(client.connected_server_version._server_version or "") or None
        metrics: dict[str, Any] = tls.cert_metrics(_peer_der(client))
        try:
            info = jetstream_reply(await account)
        except JetStreamOff as exc:
            listed.cancel()
            if self.settings.expect_jetstream:
                raise ProbeFailure("JetStream is not enabled on this server (expect_jetstream: true)") from exc
            return Measurement(latency_ms=rtt_ms, version=version, metrics={**metrics, "js.enabled": 0})
        metrics.update(account_metrics(info))
        wanted = set(self.settings.streams)
        streams: list[dict[str, Any]] = []
        page = jetstream_reply(await listed)
        while True:
            streams += [st for st in page.get("streams") or () if not wanted or st["config"]["name"] in wanted]
            seen = page.get("offset", 0) + len(page.get("streams") or ())
            if len(streams) >= self.settings.max_streams or not page.get("streams") or seen >= page.get("total", 0):
                break
            page = jetstream_reply(await (await api.ask(client, f"{API}.STREAM.LIST", b'{"offset":%d}' % seen)))
        streams = streams[: self.settings.max_streams]
        asked: dict[str, asyncio.Future[Msg]] = {}
        for stream in streams:
            name = stream["config"]["name"]
            metrics.update(stream_metrics(stream))
            if stream["state"].get("consumer_count"):
                asked[name] = await api.ask(client, f"{API}.CONSUMER.LIST.{name}")
        details: dict[str, Any] = {"streams": []}
        for stream in streams:
            name = stream["config"]["name"]
            consumers = await self._consumers(client, api, name, asked[name]) if name in asked else []
            for consumer in consumers:
                metrics.update(consumer_metrics(name, consumer))
            details["streams"].append({
                "name": name,
                "subjects": list(stream["config"].get("subjects") or []),
                "consumers": [c["name"] for c in consumers],
            })
        return Measurement(latency_ms=rtt_ms, version=version, metrics=metrics, details=details)

    async def _consumers(self, client: NATS, api: Replies, stream: str,
                         first: asyncio.Future[Msg]) -> list[dict[str, Any]]:
        """Every consumer of a stream, page by page (the server sends at most 256 a page)."""
        page = jetstream_reply(await first)
        consumers: list[dict[str, Any]] = list(page.get("consumers") or ())
        while page.get("consumers") and len(consumers) < page.get("total", 0):
            payload = b'{"offset":%d}' % len(consumers)
            page = jetstream_reply(await (await api.ask(client, f"{API}.CONSUMER.LIST.{stream}", payload)))
            consumers += page.get("consumers") or ()
        return consumers

    def _api(self, client: NATS) -> Replies:
        replies = self._replies.get(client)
        if replies is None:
            raise nats.errors.ConnectionClosedError
        return replies

    def describe(self, exc: BaseException) -> str | None:
        if isinstance(exc, nats.errors.NoServersError):
            cause = exc.__cause__ or exc.__context__
            if cause is not None and not isinstance(cause, nats.errors.NoServersError):
                return None  # the generic describer names the underlying network error
            return "no NATS server reachable"
        if "authorization violation" in str(exc).lower():
            return "authentication failed: authorization violation"
        if isinstance(exc, nats.errors.TimeoutError):
            return f"timed out after {self.settings.timeout_s:.1f} s"
        return None


def _peer_der(client: NATS) -> bytes | None:
    """The server certificate of the client's connection: nats-py's transport keeps the upgraded stream writer
    (its public API has no accessor for it)."""
    writer = getattr(getattr(client, "_transport", None), "_io_writer", None)
    return tls.peer_der(writer.get_extra_info("ssl_object")) if writer is not None else None


API = "$JS.API"  # the JetStream API's subject prefix (the account's own domain)


class JetStreamOff(Exception):
    """The JetStream API did not answer (no responders) or said it is not enabled for the account."""


class Replies:
    """The replies to one client's JetStream API requests: one inbox subscription made with the client,
    each request's reply subject one token under it (hand-written: nats-py's request() writes and waits for
    one request at a time)."""

    __slots__ = ("inbox", "seq", "waiting")

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox
        self.seq = 0
        self.waiting: dict[str, asyncio.Future[Msg]] = {}

    async def ask(self, client: NATS, subject: str, payload: bytes = b"") -> asyncio.Future[Msg]:
        """Publish a request (buffered: sent with the client's next write); the future gets its reply."""
        self.seq += 1
        reply = f"{self.inbox}.{self.seq}"
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _f: self.waiting.pop(reply, None))  # answered, cancelled or abandoned
        self.waiting[reply] = future
        await client.publish(subject, payload, reply=reply)
        return future

    def abandon(self) -> None:
        for future in list(self.waiting.values()):
            future.cancel()

    async def deliver(self, msg: Msg) -> None:
        future = self.waiting.get(msg.subject)
        if future is not None and not future.done():
            future.set_result(msg)


def jetstream_reply(msg: Msg) -> dict[str, Any]:
    """A JetStream API reply as JSON; JetStreamOff when the API is not there, ProbeFailure for its errors."""
    if msg.headers and msg.headers.get("Status") == "503":  # no responders: JetStream is off on the server
        raise JetStreamOff("no responders")
    reply = orjson.loads(msg.data)
    if not isinstance(reply, dict):
        raise ValueError(f"a JetStream API reply that is not an object: {msg.data[:60]!r}")
    error = reply.get("error")
    if error:
        if error.get("code") in (503, 404):  # not enabled for the account (nats-py: ServiceUnavailable, NotFound)
            raise JetStreamOff(error.get("description") or "")
        raise ProbeFailure(f"JetStream API error {error.get('code')} ({error.get('err_code')}): "
                           f"{error.get('description')}")
    return reply


def account_metrics(account: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of a JetStream account info reply ($JS.API.INFO)."""
    limits = account.get("limits") or {}
    memory, storage = account.get("memory", 0), account.get("storage", 0)
    metrics = {
        "js.enabled": 1,
        "js.memory_bytes": memory,
        "js.storage_bytes": storage,
        "js.streams": account.get("streams", 0),
        "js.consumers": account.get("consumers", 0),
    }
    max_memory, max_storage = limits.get("max_memory") or 0, limits.get("max_storage") or 0
    if max_memory > 0:
        metrics["js.max_memory_bytes"] = max_memory
        metrics["js.memory_used_pct"] = round(100.0 * memory / max_memory, 2)
    if max_storage > 0:
        metrics["js.max_storage_bytes"] = max_storage
        metrics["js.storage_used_pct"] = round(100.0 * storage / max_storage, 2)
    return metrics


def stream_metrics(stream: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of one stream info of a stream list reply ($JS.API.STREAM.LIST)."""
    config, state = stream["config"], stream["state"]
    name = config["name"]
    messages, size = state.get("messages", 0), state.get("bytes", 0)
    metrics: dict[str, Any] = {
        f"stream.{name}.messages": messages,
        f"stream.{name}.bytes": size,
        f"stream.{name}.consumers": state.get("consumer_count", 0),
    }
    used: list[float] = []
    max_msgs, max_bytes = config.get("max_msgs") or 0, config.get("max_bytes") or 0
    if max_msgs > 0:
        metrics[f"stream.{name}.max_msgs"] = max_msgs
        used.append(100.0 * messages / max_msgs)
    if max_bytes > 0:
        metrics[f"stream.{name}.max_bytes"] = max_bytes
        used.append(100.0 * size / max_bytes)
    if used:
        metrics[f"stream.{name}.used_pct"] = round(max(used), 2)
    return metrics


def consumer_metrics(stream: str, consumer: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of one consumer info of a consumer list reply ($JS.API.CONSUMER.LIST.<stream>)."""
    prefix = f"consumer.{stream}.{consumer['name']}"
    return {
        f"{prefix}.pending": consumer.get("num_pending") or 0,
        f"{prefix}.ack_pending": consumer.get("num_ack_pending") or 0,
        f"{prefix}.redelivered": consumer.get("num_redelivered") or 0,
        f"{prefix}.waiting": consumer.get("num_waiting") or 0,
    }


# Metrics kept as history by the store (capacity trends).
TRACKED_METRICS = ("js.memory_bytes", "js.storage_bytes", "stream.*.messages", "stream.*.bytes", "consumer.*.pending",
                   "consumer.*.ack_pending")

def capacity(m: Mapping[str, float]) -> Iterator[CapacityItem]:
    for area in ("storage", "memory"):
        if f"js.{area}_bytes" in m:
            yield CapacityItem(f"JetStream {area}", m[f"js.{area}_bytes"], limit_of(m, f"js.max_{area}_bytes"), "bytes",
                               f"js.{area}_bytes")
    for name in sorted(m):
        parts = name.split(".")
        if parts[0] == "stream" and len(parts) == 3 and parts[2] in ("bytes", "messages"):
            limit = limit_of(m, f"stream.{parts[1]}.{'max_bytes' if parts[2] == 'bytes' else 'max_msgs'}")
            yield CapacityItem(f"stream {parts[1]} {parts[2]}", m[name], limit,
                               "bytes" if parts[2] == "bytes" else "count", name)
        elif parts[0] == "consumer" and len(parts) == 4 and parts[3] == "pending":
            yield CapacityItem(f"consumer {parts[1]}/{parts[2]} lag", m[name], None, "count", name)


CATALOG = Catalog([
    MetricSpec("js.enabled", "1 when JetStream is enabled for the account"),
    MetricSpec("js.memory_bytes", "JetStream memory used by the account", unit="bytes"),
    MetricSpec("js.storage_bytes", "JetStream storage used by the account", unit="bytes"),
    MetricSpec("js.streams", "Streams of the account"),
    MetricSpec("js.consumers", "Consumers of the account"),
    MetricSpec("js.max_memory_bytes", "The account's JetStream memory limit", unit="bytes"),
    MetricSpec("js.memory_used_pct", "JetStream memory used of the limit", unit="ratio", scale=0.01,
               prom="js_memory_used_ratio"),
    MetricSpec("js.max_storage_bytes", "The account's JetStream storage limit", unit="bytes"),
    MetricSpec("js.storage_used_pct", "JetStream storage used of the limit", unit="ratio", scale=0.01,
               prom="js_storage_used_ratio"),
    MetricSpec("stream.<stream>.messages", "Messages in the stream"),
    MetricSpec("stream.<stream>.bytes", "Bytes in the stream", unit="bytes"),
    MetricSpec("stream.<stream>.consumers", "Consumers of the stream"),
    MetricSpec("stream.<stream>.max_msgs", "The stream's message limit"),
    MetricSpec("stream.<stream>.max_bytes", "The stream's byte limit", unit="bytes"),
    MetricSpec("stream.<stream>.used_pct", "The stream's fill of its tightest limit", unit="ratio", scale=0.01,
               prom="stream_used_ratio"),
    MetricSpec("consumer.<stream>.<consumer>.pending", "Messages not yet delivered to the consumer (its lag)"),
    MetricSpec("consumer.<stream>.<consumer>.ack_pending", "Messages delivered and not yet acknowledged"),
    MetricSpec("consumer.<stream>.<consumer>.redelivered", "Messages delivered more than once"),
    MetricSpec("consumer.<stream>.<consumer>.waiting", "Pull requests waiting"),
    *tls.METRICS,
])

DISPLAY_NAME = "NATS JetStream"
# status rules of every target of this kind (the first of the three rule layers, hulk_ops/core/rules.py)
DEFAULT_RULES = (
    "consumer.*.pending > 10000",
    "consumer.*.ack_pending > 10000",
    "js.storage_used_pct > 90",
    "js.memory_used_pct > 90",
    "latency_ms > 1000",
    *tls.RULES,
)
_CONSUMER = {"pending": "pending", "ack_pending": "awaiting ack", "redelivered": "redelivered",
             "waiting": "pull requests waiting"}


def describe_breach(metric: str, value: float, result: ProbeResult) -> str | None:
    """Rule messages naming the consumer or stream (stream and consumer names hold no dots)."""
    parts = metric.split(".")
    if parts[0] == "consumer" and len(parts) == 4 and parts[3] in _CONSUMER:
        return f"consumer {parts[1]}/{parts[2]}: {breach.number(value)} {_CONSUMER[parts[3]]}"
    if parts[0] == "stream" and len(parts) == 3:
        what = {"used_pct": "% of its limit used", "messages": " messages", "bytes": " bytes",
                "consumers": " consumers"}.get(parts[2])
        return f"stream {parts[1]}: {breach.number(value)}{what}" if what else None
    if metric in ("js.memory_used_pct", "js.storage_used_pct"):
        return f"JetStream {metric[3:-9]}: {breach.number(value)}% of the account limit used"
    return None


# a valid target (docs, config fuzzer, secret canaries)
EXAMPLE = {"kind": "nats", "url": "nats://127.0.0.1:4222", "token": "t"}

PROBE = NatsProbe
