"""SIGTERM: `hulk-ops collect` and `hulk-ops dashboard`, started as a user starts them, exit 0 within 2 s with
nothing half-written: the collector's last results are in the store, every store batch went in one
MULTI/EXEC (watched with MONITOR on a private Redis), and a store that is gone or frozen does not hold the
exit up (what it could not write is counted in the log)."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
import redis
import websocket
import yaml
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import load_config
from hulk_ops.dashboard.readmodel import ReadModel
from sandbox.services import free_port
from tests.waiting import wait_for

pytest_plugins = ["tests.fixtures_outage"]
PREFIX = "sd:"
# writes of a probe batch (RedisResultStore.write): only ever inside MULTI ... EXEC
BATCH_WRITES = (f"HSET {PREFIX}latest", f"APPEND {PREFIX}h:", f"APPEND {PREFIX}m:", f"XADD {PREFIX}ev",
                f"SET {PREFIX}last_write", f"SET {PREFIX}wb:", f"SADD {PREFIX}mi:", f"EXPIRE {PREFIX}")


def collector_config(tmp_path: Path, store_url: str, services, blackhole: int) -> Path:
    path = tmp_path / "shutdown.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": store_url, "prefix": PREFIX},
        "collector": {"breaker": {"failures": 1000}},
        "targets": [
            {"name": "cache", "kind": "redis", "url": services.endpoints["redis"].url, "interval_s": 0.5},
            {"name": "db", "kind": "postgres", "url": services.endpoints["postgres"].url, "interval_s": 0.5},
            {"name": "bus", "kind": "nats", "url": services.endpoints["nats"].url, "interval_s": 0.5},
            # always in flight: SIGTERM cancels it, and nothing of it is written
            {"name": "hole", "kind": "redis", "url": f"redis://127.0.0.1:{blackhole}", "interval_s": 0.5},
        ],
    }), encoding="utf-8")
    return path


class Monitor:
    """Every command the private Redis executes, as MONITOR reports it (MULTI, the queued ones, EXEC)."""

    def __init__(self, server) -> None:
        self.commands: list[dict] = []
        self.client = redis.Redis.from_url(server.url)  # no read timeout: quiet seconds are normal
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        try:
            with self.client.monitor() as monitor:
                ready.set()
                for command in monitor.listen():
                    self.commands.append(command)
        except redis.ConnectionError:  # the server stopped at teardown
            return

    def outside_transactions(self) -> list[str]:
        """Batch writes that a connection sent while it was not between MULTI and EXEC."""
        in_multi: dict[str, bool] = {}
        stray = []
        scripted = ""  # the connection whose script runs (a script's commands are logged from a "lua" client)
        for command in list(self.commands):
            conn, text = f"{command['client_address']}:{command['client_port']}", command["command"]
            if text.startswith(("EVAL ", "EVALSHA ")):
                scripted = conn
            elif command.get("client_type") == "lua":
                conn = scripted
            if text == "MULTI":
                in_multi[conn] = True
            elif text in ("EXEC", "DISCARD"):
                in_multi[conn] = False
            elif text.startswith(BATCH_WRITES) and not in_multi.get(conn):
                stray.append(text[:80])
        return stray


def test_collector_stops_within_two_seconds_with_its_last_results_stored(
        services, private_redis, collector_process, blackhole, tmp_path) -> None:
    path = collector_config(tmp_path, private_redis.url, services, blackhole)
    monitor = Monitor(private_redis)
    collector = collector_process(path)
    client = private_redis.client()
    assert wait_for(lambda: client.hlen(Keys(PREFIX).latest) == 4, 30)
    time.sleep(2.5)
    took = collector.terminate()
    time.sleep(0.2)  # MONITOR's own connection may still be reading the last lines

    assert collector.proc.returncode == 0
    assert took < 2.0, took
    final = orjson.loads(next(iter(client.hgetall(Keys(PREFIX).collectors).values())))
    assert final["stopped"] is True and final["buffered"] == 0
    model = ReadModel(load_config(path), client)
    stored = sum(len(model.history(t, time.time() - 300, time.time() + 1)) for t in ("cache", "db", "bus", "hole"))
    # every result produced before SIGTERM, up to the last, is in the store; the one in flight was not produced
    assert stored == final["probes_done"], (stored, final["probes_done"])
    stopped = [line for line in collector.lines() if line["event"] == "collector_stopped"]
    assert stopped and stopped[0]["unflushed"] == 0, stopped
    assert not [line for line in collector.lines() if line["level"] in ("error", "critical")]

    commands = [c["command"] for c in monitor.commands]
    assert commands.count("EXEC") >= 5 and any(c.startswith(f"APPEND {PREFIX}h:{{cache}}:") for c in commands)
    assert monitor.outside_transactions() == []  # every batch whole or not at all
    print(f"\ncollector: SIGTERM to exit {took:.2f} s (stop steps {stopped[0]['shutdown_s']:.2f} s: "
          f"{stopped[0]['phases']}), {stored} samples stored = probes_done")
    client.close()


@pytest.mark.parametrize("store", ["down", "frozen"])
def test_collector_stops_within_two_seconds_when_its_store_is_gone(
        services, private_redis, collector_process, blackhole, tmp_path, store) -> None:
    path = collector_config(tmp_path, private_redis.url, services, blackhole)
    collector = collector_process(path)
    client = private_redis.client()
    assert wait_for(lambda: client.hlen(Keys(PREFIX).latest) == 4, 30)
    client.close()
    if store == "down":
        private_redis.stop()
    else:  # accepts connections (the kernel does) but never answers: writes hang until their timeout
        private_redis.freeze()
    try:
        assert wait_for(lambda: collector.metric("hulk_ops_store_buffered_results") >= 6, 10)
        took = collector.terminate()
    finally:
        if store == "frozen":
            private_redis.thaw()
    assert collector.proc.returncode == 0
    assert took < 2.0, took
    stopped = next(line for line in collector.lines() if line["event"] == "collector_stopped")
    assert stopped["unflushed"] >= 6  # not written, and said so
    assert [line for line in collector.lines() if line["event"] == "writer_unflushed_at_stop"]
    print(f"\ncollector, store {store}: SIGTERM to exit {took:.2f} s, {stopped['unflushed']} results unflushed, "
          f"steps {stopped['phases']}")


def test_dashboard_stops_within_two_seconds_with_a_session_open(private_redis, hulk_process, tmp_path) -> None:
    path = tmp_path / "dash.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": private_redis.url, "prefix": PREFIX},
        "targets": [{"name": "cache", "kind": "redis", "url": "redis://h:1"}],
    }), encoding="utf-8")
    port = free_port()
    dash = hulk_process(["dashboard", "--config", str(path), "--port", str(port)], "dashboard")
    try:
        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
            except OSError:
                return False

        assert wait_for(healthy, 60, step=0.2), dash.log.read_text()[-2000:]
        # a browser's session: open the app's WebSocket and run the page to its end
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                         timeout=60)
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        ws.send_binary(rerun.SerializeToString())
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while "script_finished" not in seen and time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv())
            seen.add(msg.WhichOneof("type") or "")
        assert {"new_session", "delta", "script_finished"} <= seen, seen

        def keep_reading() -> None:  # as a browser does: it answers the server's close
            try:
                while ws.recv():
                    pass
            except Exception:
                return

        threading.Thread(target=keep_reading, daemon=True).start()
        took = dash.terminate()
    finally:
        dash.kill()  # only if SIGTERM did not stop it
    assert dash.proc.returncode == 0, dash.log.read_text()[-2000:]
    assert took < 2.0, took
    assert "Traceback" not in dash.log.read_text()
    print(f"\ndashboard: SIGTERM to exit {took:.2f} s with a session open")
