"""A little live traffic for the demo, so latency, lag and growth charts move.

Orders are published to a NATS JetStream stream (`DEMO_ORDERS`) and consumed by a durable
`billing` consumer that is slower than the producer in bursts (its lag rises and falls); cache keys
are written to Redis with TTLs; rows are appended to `hulk_demo.orders` in PostgreSQL. Runs on its
own event loop in a daemon thread; `stop()` ends it and drops the demo stream and schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
import time

import asyncpg
import nats
import redis.asyncio as aioredis
from nats.js.api import ConsumerConfig, StreamConfig

CONSUMER = "billing"


class Traffic:
    def __init__(self, redis_url: str, nats_url: str, postgres_url: str, tick_s: float = 1.0, suffix: str = "") -> None:
        self.redis_url, self.nats_url, self.postgres_url = redis_url, nats_url, postgres_url
        # a suffix keeps concurrent demos (a user's and a test's) from touching each other's objects
        self.stream, self.subject = f"DEMO_ORDERS{suffix.upper()}", f"demo{suffix}.orders.created"
        self.schema = f"hulk_demo{suffix.lower()}"  # ours (a hash of the workdir), never user input
        self._insert = (f"INSERT INTO {self.schema}.orders (payload) "  # noqa: S608
                        "SELECT repeat('x', 200) FROM generate_series(1, $1)")
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    async def _main(self) -> None:
        cache = aioredis.Redis.from_url(self.redis_url)
        nc = await nats.connect(self.nats_url, name="hulk-ops-demo-traffic")
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.add_stream(StreamConfig(name=self.stream, subjects=[self.subject], max_msgs=100_000))
        with contextlib.suppress(Exception):
            await js.add_consumer(self.stream, ConsumerConfig(durable_name=CONSUMER, ack_policy="explicit"))
        sub = await js.pull_subscribe(self.subject, durable=CONSUMER, stream=self.stream)
        pg = await asyncpg.connect(self.postgres_url)
        await pg.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}; CREATE TABLE IF NOT EXISTS {self.schema}.orders "
                         "(id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), payload text)")
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                phase = (time.monotonic() - started) / 120.0 * 2 * math.pi
                produced = 20 + int(15 * math.sin(phase))
                for i in range(produced):
                    await js.publish(self.subject, f'{{"order": {i}, "amount": {random.randint(5, 500)}}}'.encode())
                consume = produced + (10 if math.sin(phase) < 0 else -8)
                with contextlib.suppress(nats.errors.TimeoutError):
                    for msg in await sub.fetch(max(1, consume), timeout=0.2):
                        await msg.ack()
                await cache.set(f"demo:session:{random.randint(1, 500)}", "x" * random.randint(10, 2000), ex=300)
                await pg.execute(self._insert, produced)
                await asyncio.sleep(self.tick_s)
        finally:
            with contextlib.suppress(Exception):
                await js.delete_stream(self.stream)
            with contextlib.suppress(Exception):
                await pg.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            await pg.close()
            await nc.close()
            await cache.aclose()
