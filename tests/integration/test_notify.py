"""Notifications end to end: a real collector, real targets that really fail, a real webhook receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import redis

from hulk_ops.collectors.notify.keys import NotifyKeys
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel import ReadModel
from hulk_ops.dashboard.silence_writer import Operator, SilenceWriter
from hulk_ops.entrypoints.service import run_collector
from tests.waiting import await_for, wait_for

pytest_plugins = ["tests.fixtures_observe"]

FAST = {"breaker": {"failures": 3, "reset_s": 0.5}, "jitter_pct": 0}


def hooks(receiver) -> list[dict]:
    return [{"name": "generic", "url": receiver.url("/generic"), "format": "generic"},
            {"name": "slack", "url": receiver.url("/slack"), "format": "slack",
             "headers": {"X-Token": "canary-header-secret"}},
            {"name": "am", "url": receiver.url("/am"), "format": "alertmanager"}]


async def test_one_notification_per_incident_and_one_resolve(restartable_redis, webhook_receiver, write_config,
                                                             redis_server) -> None:
    url = restartable_redis.url
    targets = [
        {"name": "dep", "kind": "redis", "url": url, "interval_s": 0.5},
        {"name": "app1", "kind": "redis", "url": f"{url}/1", "interval_s": 0.5, "depends_on": ["dep"]},
        {"name": "app2", "kind": "redis", "url": f"{url}/2", "interval_s": 0.5, "depends_on": ["dep"]},
        {"name": "app3", "kind": "tcp", "url": f"tcp://127.0.0.1:{restartable_redis.port}", "interval_s": 0.5,
         "depends_on": ["app1"]},  # through app1: still explained by dep
        {"name": "other", "kind": "redis", "url": redis_server.url, "interval_s": 0.5},
    ]
    config = load_config(write_config(targets, collector=FAST, notify={
        "group_wait_s": 1.5, "update_interval_s": 0, "evaluate_s": 0.2, "webhooks": hooks(webhook_receiver)}))
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
    try:
        model = ReadModel(config)
        assert await await_for(lambda: {v.status for v in model.target_views()} == {"up"}, 10)
        restartable_redis.stop()
        stopped_at = time.time()
        assert await await_for(lambda: len(webhook_receiver.all()) >= 3, 10)
        await asyncio.sleep(2.0)  # anything more would arrive now (three intervals, many evaluations)
        opens = webhook_receiver.all()
        assert sorted(r.path for r in opens) == ["/am", "/generic", "/slack"]  # one per webhook, no more
        generic = webhook_receiver.bodies("/generic")[0]
        assert generic["event"] == "open" and generic["incident"]["root"] == "dep"
        assert generic["incident"]["dependents"] == ["app1", "app2", "app3"]
        assert f"connection refused (127.0.0.1:{restartable_redis.port})" in generic["targets"]["dep"]["error"]
        assert min(r.at for r in opens) - stopped_at < 1.5 + 1.0 + 1.0  # group wait + an interval + slack
        slack = webhook_receiver.bodies("/slack")[0]
        assert slack["text"].startswith(":rotating_light: DOWN: dep is down (+3 dependents")
        am = webhook_receiver.bodies("/am")[0]
        assert [a["labels"]["target"] for a in am] == ["dep"] and am[0]["endsAt"] > am[0]["startsAt"]
        slack_request = next(r for r in opens if r.path == "/slack")
        assert slack_request.headers["X-Token"] == "canary-header-secret"
        assert slack_request.headers["X-Hulk-Ops-Message-Id"].startswith(generic["incident"]["id"])

        restartable_redis.start()
        assert await await_for(lambda: len(webhook_receiver.all()) >= 6, 10)
        await asyncio.sleep(2.0)
        resolves = webhook_receiver.all()[3:]
        assert sorted(r.path for r in resolves) == ["/am", "/generic", "/slack"]
        body = next(r.body for r in resolves if r.path == "/generic")
        assert (body["event"], body["incident"]["id"]) == ("resolve", generic["incident"]["id"])
        (am_resolve,) = next(r.body for r in resolves if r.path == "/am")
        assert am_resolve["labels"] == am[0]["labels"] and am_resolve["endsAt"] < am[0]["endsAt"]
        (beat,) = model.collectors()
        assert beat.info["notify_leader"] is True and beat.info["store_write_ms_p50"] > 0
        assert beat.info["cycle_lag_s"] >= 0 and beat.info["notify_outbox"] == {"generic": 0, "slack": 0, "am": 0}
        deliveries = model.deliveries()
        assert sorted((d.webhook, d.event, d.outcome) for d in deliveries) == sorted(
            (w, e, "delivered") for w in ("generic", "slack", "am") for e in ("open", "resolve"))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_silenced_target_sends_nothing_in_the_window_and_resumes_after(
        webhook_receiver, write_config, closed_port, store_redis_url) -> None:
    now = time.time()
    window_end = float(int(now) + 4)  # whole seconds: the config and the dashboard keep it exactly
    iso = lambda ts: datetime.fromtimestamp(ts, UTC).isoformat()  # noqa: E731
    targets = [{"name": "lone", "kind": "redis", "url": f"redis://127.0.0.1:{closed_port}", "interval_s": 0.5},
               {"name": "lone2", "kind": "tcp", "url": f"tcp://127.0.0.1:{closed_port}", "interval_s": 0.5,
                "labels": {"team": "db"}}]
    config = load_config(write_config(
        targets, collector=FAST,
        notify={"group_wait_s": 0, "evaluate_s": 0.2, "webhooks": [{"name": "g", "url": webhook_receiver.url()}]},
        silences=[{"targets": ["lone"], "start": iso(now - 60), "end": iso(window_end), "author": "ana",
                   "reason": "upgrade"}]))
    client = redis.Redis.from_url(store_redis_url)
    writer = SilenceWriter(config, client)
    writer.add(Operator("bo", "operator"), [], {"team": "db"}, now - 1, window_end, "disk swap")
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
    try:
        model = ReadModel(config)
        assert await await_for(lambda: {v.status for v in model.target_views()} == {"down"}, 5)
        views = {v.name: v for v in model.target_views()}
        assert views["lone"].silenced_until == window_end and views["lone2"].silenced_until == window_end
        await asyncio.sleep(max(0.0, window_end - time.time() - 0.3))
        assert webhook_receiver.all() == []  # down all along, silenced: nothing sent in the window
        assert await await_for(lambda: len(webhook_receiver.all()) >= 2, 3)
        first = min(r.at for r in webhook_receiver.all())
        assert window_end <= first < window_end + 1.5
        await asyncio.sleep(1.0)
        assert sorted((b["event"], b["incident"]["root"]) for b in webhook_receiver.bodies()) == [
            ("open", "lone"), ("open", "lone2")]
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        client.close()


def test_outbox_survives_a_killed_collector_and_delivers_once(webhook_receiver, write_config, closed_port,
                                                               store_redis_url, store_prefix) -> None:
    webhook_receiver.status = 503
    path = write_config(
        [{"name": "gone", "kind": "redis", "url": f"redis://127.0.0.1:{closed_port}", "interval_s": 0.5}],
        collector=FAST,
        notify={"group_wait_s": 0, "evaluate_s": 0.2, "retry": {"backoff_s": 0.3},
                "webhooks": [{"name": "g", "url": webhook_receiver.url()}]})
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HULK_OPS_REPLICA": f"notify-test-{store_prefix}"}
    argv = [sys.executable, "-m", "hulk_ops", "collect", "--config", str(path), "--metrics-port", "0"]
    client = redis.Redis.from_url(store_redis_url)
    queue = NotifyKeys(store_prefix).queue("g")
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = None
    try:
        log_key = NotifyKeys(store_prefix).log
        assert wait_for(lambda: client.xlen(log_key) >= 2, 20), "no retries seen"  # two failed tries recorded
        first.send_signal(signal.SIGKILL)  # mid-retry: nothing delivered yet, the head waits for its next try
        first.wait(5)
        failed = webhook_receiver.all()
        assert {r.status for r in failed} == {503}
        message_ids = {r.headers["X-Hulk-Ops-Message-Id"] for r in failed}
        assert len(message_ids) == 1
        head = orjson.loads(client.lindex(queue, 0))
        assert head["id"] in message_ids and head["attempts"] >= 2 and client.llen(queue) == 1

        webhook_receiver.status = 200
        second = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: webhook_receiver.bodies(), 20)
        time.sleep(1.5)  # a duplicate (a re-sent open, or the message twice) would show up now
        delivered = [r for r in webhook_receiver.all() if r.status == 200]
        assert len(delivered) == 1
        assert delivered[0].headers["X-Hulk-Ops-Message-Id"] in message_ids
        assert client.llen(queue) == 0
        second.send_signal(signal.SIGTERM)
        second.wait(5)
        assert second.returncode == 0, second.stderr.read() if second.stderr else ""
        log = [fields[b"outcome"].decode() for _id, fields in client.xrange(log_key)]
        assert log.count("delivered") == 1 and log.count("retry") >= 2
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        client.close()


async def test_delivery_backs_off_keeps_order_gives_up_on_4xx_and_bounds_the_outbox(
        webhook_receiver, store_redis_url, store_prefix) -> None:
    import aiohttp

    from hulk_ops.collectors.notify.delivery import Deliverer
    from hulk_ops.collectors.notify.store import NotifyStore
    from hulk_ops.collectors.telemetry import CollectorMetrics
    from hulk_ops.core.observe_config import RetrySettings, WebhookSettings

    store = NotifyStore(store_redis_url, store_prefix, outbox_max=10)
    hook = WebhookSettings(name="g", url=webhook_receiver.url())
    now = time.time()
    messages = [{"id": f"m{i}", "webhook": "g", "event": "open", "incident_id": f"i{i}", "root": "r", "summary": "s",
                 "created_at": now, "attempts": 0, "next_at": now, "body": {"n": i}} for i in range(12)]
    dropped = await store.commit({}, [], messages)
    assert [m["id"] for m in dropped] == ["m0", "m1"]  # bounded: the oldest two went
    async with aiohttp.ClientSession() as session:
        deliverer = Deliverer(store, RetrySettings(backoff_s=10, backoff_max_s=25), CollectorMetrics(), session)
        webhook_receiver.status = 503
        for attempt, wait in ((1, 10), (2, 20), (3, 25)):  # doubling, capped
            assert await deliverer.deliver_due(hook, now) is False
            _raw, head = await store.head("g")
            assert (head["id"], head["attempts"], head["next_at"]) == ("m2", attempt, now + wait)
            assert await deliverer.deliver_due(hook, now + wait - 1) is False  # not due: nothing sent
            now += wait
        assert [r.body["n"] for r in webhook_receiver.all()] == [2, 2, 2]  # m3 waited behind its head
        webhook_receiver.status = 400
        assert await deliverer.deliver_due(hook, now) is True  # refused for good: given up, the queue moves
        webhook_receiver.status = 200
        assert await deliverer.deliver_due(hook, now) is True
    assert [b["n"] for b in webhook_receiver.bodies()] == [3]
    assert await store.queue_length("g") == 8
    log = [(f[b"message_id"].decode(), f[b"outcome"].decode()) for _i, f in
           await store.redis.xrange(NotifyKeys(store_prefix).log)]
    assert log == [("m2", "retry")] * 3 + [("m2", "gave_up"), ("m3", "delivered")]
    await store.close()


async def test_webhooks_get_only_the_incidents_their_match_takes(webhook_receiver, write_config, closed_port) -> None:
    url = f"tcp://127.0.0.1:{closed_port}"
    config = load_config(write_config(
        [{"name": "orders-db", "kind": "tcp", "url": url, "interval_s": 0.5, "labels": {"team": "payments"}},
         {"name": "search", "kind": "tcp", "url": url, "interval_s": 0.5, "labels": {"team": "core"}}],
        collector=FAST, notify={"group_wait_s": 0.5, "evaluate_s": 0.2, "webhooks": [
            {"name": "all", "url": webhook_receiver.url("/all")},
            {"name": "payments", "url": webhook_receiver.url("/payments"), "match": {"labels": {"team": "payments"}}},
            {"name": "warnings", "url": webhook_receiver.url("/warnings"), "match": {"severities": ["warning"]}}]}))
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
    try:
        assert await await_for(lambda: len(webhook_receiver.bodies("/all")) >= 2, 10)
        await asyncio.sleep(1.0)  # anything misrouted would have arrived by now
        assert sorted(b["incident"]["root"] for b in webhook_receiver.bodies("/all")) == ["orders-db", "search"]
        assert [b["incident"]["root"] for b in webhook_receiver.bodies("/payments")] == ["orders-db"]
        assert webhook_receiver.bodies("/warnings") == []  # both are down: critical
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
