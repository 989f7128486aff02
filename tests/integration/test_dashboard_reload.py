"""`hulk-ops dashboard` re-reads its config on SIGHUP: a page run after the signal shows a target added to the
file; an invalid file is refused and the page keeps the config in force."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest
import websocket
import yaml
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from sandbox.services import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_outage"]


def _write(path: Path, store_url: str, prefix: str, names: list[str]) -> None:
    path.write_text(yaml.safe_dump({
        "store": {"redis_url": store_url, "prefix": prefix},
        "targets": [{"name": n, "kind": "redis", "url": "redis://127.0.0.1:1"} for n in names],
    }), encoding="utf-8")


def _page_bytes(port: int) -> bytes:
    """Run the app's first page once over its WebSocket, as a browser does; everything the server sent."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                     timeout=60)
    try:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        ws.send_binary(rerun.SerializeToString())
        received = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            raw = ws.recv()
            received.append(raw)
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            if msg.WhichOneof("type") == "script_finished":
                break
        return b"".join(received)
    finally:
        ws.close()


def test_sighup_shows_a_new_target(store_redis_url: str, store_prefix: str, hulk_process, tmp_path: Path) -> None:
    path = tmp_path / "dash.yaml"
    _write(path, store_redis_url, store_prefix, ["reload-old-target"])
    port = free_port()
    dash = hulk_process(["dashboard", "--config", str(path), "--port", str(port)], "dashboard")

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
        except OSError:
            return False

    assert wait_for(healthy, 90, step=0.2), dash.log.read_text()[-2000:]
    first = _page_bytes(port)
    assert b"reload-old-target" in first and b"reload-new-target" not in first

    _write(path, store_redis_url, store_prefix, ["reload-old-target", "reload-new-target"])
    dash.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "config reloaded" in dash.log.read_text(), 30), dash.log.read_text()[-2000:]
    assert b"reload-new-target" in _page_bytes(port)

    path.write_text("targets: [\n", encoding="utf-8")
    dash.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "config reload refused" in dash.log.read_text(), 30), dash.log.read_text()[-2000:]
    kept = _page_bytes(port)
    assert b"reload-new-target" in kept
    assert dash.proc.poll() is None
    assert "Traceback" not in dash.log.read_text()
