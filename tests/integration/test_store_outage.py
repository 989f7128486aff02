"""Store outage under a running `hulk-ops collect`: its Redis (a private one) really stops, results wait in
memory (bounded, oldest dropped first and counted), and when Redis is back they land in order, all of them
within the bound, none twice.

The targets are real (the shared Redis, PostgreSQL and NATS) plus a TCP target the test flips down and up
during the outage, so state-change events are written from the buffer too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import yaml

from hulk_ops.collectors.codec import Keys
from hulk_ops.collectors.store import RedisResultStore
from hulk_ops.core.config import load_config
from hulk_ops.core.model import parse_iso
from hulk_ops.dashboard.readmodel import ReadModel
from tests.seed import result
from tests.waiting import wait_for

pytest_plugins = ["tests.fixtures_outage"]

OUTAGE_S = 60.0  # the minute; the only test this long (the bounded-buffer test below needs 20 s)


class Listener:
    """A TCP port the test opens and closes: a tcp target on it is up or down as the test says."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self.sock = sock
        self.thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        self.thread.start()

    def _accept(self, sock: socket.socket) -> None:
        while self.sock is sock:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()
        if self.thread is not None:
            self.thread.join(2)


def write_config(tmp_path: Path, store_url: str, targets: list[dict], **collector) -> Path:
    path = tmp_path / "outage.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": store_url, "prefix": "outage:"},
        "collector": {"breaker": {"failures": 1000}, **collector},
        "targets": targets,
    }, sort_keys=False), encoding="utf-8")
    return path


def core_targets(services, interval_s: float) -> list[dict]:
    return [
        {"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url, "interval_s": interval_s},
        {"name": "db", "kind": "postgres", "url": services.endpoints["postgres"].url, "interval_s": interval_s},
        {"name": "bus", "kind": "nats", "url": services.endpoints["nats"].url, "interval_s": interval_s},
    ]


def heartbeat(server) -> dict:
    client = server.client()
    try:
        raw = client.hgetall(Keys("outage:").collectors)
    finally:
        client.close()
    assert len(raw) == 1, raw
    return orjson.loads(next(iter(raw.values())))


def gaps(ts: np.ndarray) -> np.ndarray:
    return np.diff(ts)


def test_a_minute_without_the_store_loses_nothing_and_lands_in_order(
        services, private_redis, collector_process, tmp_path) -> None:
    flap = Listener()
    flap.open()
    targets = [*core_targets(services, 1.0),
               {"name": "flap", "kind": "tcp", "url": f"tcp://127.0.0.1:{flap.port}", "interval_s": 1,
                "timeout_s": 0.5}]
    path = write_config(tmp_path, private_redis.url, targets)
    config = load_config(path)
    keys = Keys("outage:")
    collector = collector_process(path)
    try:
        client = private_redis.client()
        assert wait_for(lambda: client.hlen(keys.latest) == 4, 30), "the collector never wrote all four targets"
        started = time.time()
        time.sleep(3)
        client.close()

        private_redis.stop()
        down_at = time.time()
        seen: list[tuple[float, float, float, float]] = []  # (t, store_up, buffered, probes so far)

        def sample() -> None:
            m = collector.metrics()
            probes = sum(v for (n, _), v in m.items() if n == "hulk_ops_probes_total")
            seen.append((time.time() - down_at, m[("hulk_ops_store_up", ())],
                         m[("hulk_ops_store_buffered_results", ())], probes))

        flipped: dict[str, float] = {}
        while time.time() - down_at < OUTAGE_S:
            elapsed = time.time() - down_at
            if elapsed >= 15 and "down" not in flipped:
                flap.close()
                flipped["down"] = time.time()
            if elapsed >= 35 and "up" not in flipped:
                flap.open()
                flipped["up"] = time.time()
            sample()
            time.sleep(min(2.5, max(0.0, OUTAGE_S - (time.time() - down_at))))
        sample()

        private_redis.start()
        up_at = time.time()
        # the writer retries with a backoff of at most 5 s, then flushes the whole backlog
        assert wait_for(lambda: collector.metric("hulk_ops_store_buffered_results") == 0
                        and collector.metric("hulk_ops_store_up") == 1, 20), collector.metrics()
        flushed_after_s = time.time() - up_at
        dropped = collector.metric("hulk_ops_store_dropped_results_total")
        time.sleep(1.5)
        # a run still going at its next start is skipped (and counted): that is the scheduler, not the store
        skipped = {t: np.nan_to_num(collector.metric("hulk_ops_probes_skipped_total", target=t))
                   for t in ("cache", "db", "bus", "flap")}  # never skipped: no sample (nan)
        took = collector.terminate()
        code = collector.proc.returncode
    finally:
        flap.close()

    # while the store was away: not up, a growing buffer, and probing went on at its pace (1/s per target)
    during = [s for s in seen if 3 < s[0] < OUTAGE_S - 1]
    assert during and all(up == 0 for _, up, _, _ in during), seen
    buffered = [b for _, _, b, _ in during]
    assert buffered == sorted(buffered) and buffered[-1] >= 3.5 * (during[-1][0] - 1), seen
    rate = (during[-1][3] - during[0][3]) / (during[-1][0] - during[0][0])
    assert 3.5 <= rate <= 4.5, (rate, seen)  # 4 targets x 1/s: store retries never held the scheduler up
    assert dropped == 0

    assert code == 0 and took < 2.0, (code, took)
    final = heartbeat(private_redis)
    assert final["stopped"] is True and final["dropped"] == 0 and final["buffered"] == 0
    assert final["max_lag_s"] < 0.5, final  # no cycle started late by more than that, outage or not

    model = ReadModel(config, private_redis.client())
    end = time.time() + 1
    stored = 0
    for target in ("cache", "db", "bus", "flap"):
        ts = model.history(target, started - 30, end)["ts"]
        stored += len(ts)
        # in order and no duplicates: each target's samples strictly increase in time
        assert (gaps(ts) > 0).all(), target
        # nothing missing: one sample per interval (1 s, jitter up to 5 %, timestamps in 0.1 s) all the way
        # through the outage, but for runs the scheduler skipped
        late = int((gaps(ts) >= 1.6).sum())
        assert late <= skipped[target], (target, late, skipped, float(gaps(ts).max()))
        in_outage = ts[(ts >= down_at) & (ts < up_at)]
        assert abs(len(in_outage) + late - (up_at - down_at)) <= 2, (target, len(in_outage), up_at - down_at)
        latest = model.latest([target])[target]
        assert abs(latest.observed_ts - ts[-1]) < 0.11  # the newest result is the newest sample
    # every result the collector produced is stored: none dropped, none lost at shutdown
    assert stored == final["probes_done"], (stored, final["probes_done"])
    # the breakers hash (written with the heartbeat, not buffered) is current again: every target, closed
    assert {name: b["state"] for name, b in model.breakers().items()} == dict.fromkeys(("cache", "db", "bus", "flap"),
                                                                                     "closed")

    # state changes made during the outage were written from the buffer: in order, with their real times
    events = [e.fields for e in reversed(model.events(50)) if e.fields["target"] == "flap"]
    assert [(e["previous"], e["current"]) for e in events] == [("up", "down"), ("down", "up")], events
    for event, key in zip(events, ("down", "up"), strict=True):
        assert 0 <= parse_iso(event["at"]).timestamp() - flipped[key] < 1.6, (event, flipped)
    print(f"\noutage {up_at - down_at:.1f} s: peak buffer {buffered[-1]:.0f} results, flushed "
          f"{flushed_after_s:.1f} s after the store returned, {stored} samples stored = probes_done, "
          f"SIGTERM exit {took:.2f} s")
    with contextlib.suppress(Exception):
        model.redis.close()


def test_past_its_bound_the_buffer_drops_the_oldest_and_counts_them(
        services, private_redis, collector_process, tmp_path) -> None:
    # 20 s, not a minute: 3 targets every 0.25 s fill a 100-result buffer in about 8 s, so 20 s without the
    # store already drops ~140 results, which is all this test is about (the minute runs in the test above)
    interval, outage_s, bound = 0.25, 20.0, 100
    path = write_config(tmp_path, private_redis.url, core_targets(services, interval), buffer_max=bound)
    config = load_config(path)
    collector = collector_process(path)
    client = private_redis.client()
    assert wait_for(lambda: client.hlen(Keys("outage:").latest) == 3, 30)
    client.close()
    started = time.time()
    time.sleep(1)
    private_redis.stop()
    down_at = time.time()
    buffered = []
    while time.time() - down_at < outage_s:
        buffered.append(collector.metric("hulk_ops_store_buffered_results"))
        time.sleep(0.5)
    dropped_while_down = collector.metric("hulk_ops_store_dropped_results_total")
    private_redis.start()
    up_at = time.time()
    assert wait_for(lambda: collector.metric("hulk_ops_store_buffered_results") == 0
                    and collector.metric("hulk_ops_store_up") == 1, 20), collector.metrics()
    dropped = collector.metric("hulk_ops_store_dropped_results_total")
    # the heartbeat tells the dashboard too (written every 5 s)
    assert wait_for(lambda: heartbeat(private_redis)["heartbeat_at"] > up_at + 0.5, 12)
    told = heartbeat(private_redis)
    took = collector.terminate()
    final = heartbeat(private_redis)

    assert max(buffered) == bound and all(b <= bound for b in buffered), buffered
    assert dropped_while_down > 0 and dropped >= dropped_while_down
    assert told["dropped"] == dropped == final["dropped"], (told, dropped, final)
    assert collector.proc.returncode == 0 and took < 2.0, took

    model = ReadModel(config, private_redis.client())
    stored, cuts = 0, []
    for target in ("cache", "db", "bus"):
        history = model.history(target, started - 30, time.time() + 1)
        ts = history["ts"]
        stored += len(ts)
        step = gaps(ts)
        assert (step >= 0).all(), target  # in order
        # no result stored twice: two probes 0.25 s apart on a loaded machine may share a tenth of a second (the
        # stored time's resolution), never their latency as well
        assert len(set(zip(ts.tolist(), history["latency"].tolist(), strict=True))) == len(ts), target
        hole = int(np.argmax(step))
        # one hole, starting where the outage started: the oldest results went first ...
        assert down_at - 1.0 <= ts[hole] <= down_at + 1.0, (target, ts[hole] - down_at)
        assert np.delete(step, hole).max() < 3 * interval, (target, float(np.delete(step, hole).max()))
        cuts.append(ts[hole + 1])
        # ... and what was kept is the newest part of the outage, without a gap up to now
        assert ts[hole + 1] > down_at + 5 and ts[-1] > up_at
    # one buffer for all targets: the cut is at the same moment for each of them
    assert max(cuts) - min(cuts) < 2 * interval, [c - down_at for c in cuts]
    # exactly the dropped results are missing, nothing else
    assert final["probes_done"] - stored == dropped, (final["probes_done"], stored, dropped)
    print(f"\nbuffer_max {bound}: {dropped:.0f} dropped over {up_at - down_at:.1f} s, kept the newest from "
          f"{min(cuts) - down_at:.1f} s into the outage; SIGTERM exit {took:.2f} s")


async def test_the_store_tells_which_batches_landed(private_redis) -> None:
    """The exactly-once check the writer makes after a write whose reply it never saw, on a real Redis."""
    store = RedisResultStore(private_redis.url, Keys("outage:"))
    try:
        assert not await store.batch_landed("w1", 1)
        await store.write([result("cache", "redis", "up", time.time())], [], batch=("w1", 7))
        assert await store.batch_landed("w1", 7) and await store.batch_landed("w1", 3)
        assert not await store.batch_landed("w1", 8) and not await store.batch_landed("w2", 1)
        assert 0 < await store.redis.ttl(Keys("outage:").batch_mark("w1")) <= 86_400
    finally:
        await store.close()
