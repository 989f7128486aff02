"""`hulk-ops demo` as a newcomer runs it: real backends come up on the Overview page in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from sandbox.services import free_port, stop_process
from tests.e2e.conftest import screenshot

EXPECTED_UP = ["cache", "orders-db", "event-bus", "prometheus", "dashboard", "vector-store", "knowledge-graph",
               "k8s-prod", "gpu-cloud", "search-api", "shop-db"]


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    log = open(tmp_path / "demo.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "demo", "--port", str(port),
                             "--workdir", str(tmp_path / "demo")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    out = tmp_path / "demo.out"
    while time.monotonic() < deadline and "dashboard  http://" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        time.sleep(0.2)
    assert "dashboard  http://" in out.read_text(), out.read_text()
    yield f"http://127.0.0.1:{port}", proc, out
    stop_process(proc, timeout=20)


def test_demo_shows_the_backends_up_and_stops_cleanly(demo, page) -> None:
    url, proc, out = demo
    page.goto(url)
    page.get_by_text("Demo users (local, for this sandbox only)").wait_for(timeout=60_000)  # the login page
    page.get_by_role("textbox", name="User").fill("viewer")
    page.get_by_role("textbox", name="Password").fill("viewer-demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("hulk-ops · demo sandbox").wait_for(timeout=60_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = page.inner_text("body")
        if all(re.search(rf"UP\s+{name}", body) for name in EXPECTED_UP):
            break
        time.sleep(1)  # the overview refreshes itself (st.fragment run_every)
    body = page.inner_text("body")
    for name in EXPECTED_UP:
        assert re.search(rf"UP\s+{name}", body), body[:3000]
    assert "No collector is writing" not in body
    screenshot(page, "overview", ready_text="Never seen")

    # stage an incident through the demo's control API: the vector store goes down, search-api follows
    control = re.search(r"control\s+(http://\S+)", out.read_text()).group(1)
    request = urllib.request.Request(f"{control}/sims/qdrant/fault", data=b'{"mode": "down"}', method="POST")
    assert json.loads(urllib.request.urlopen(request, timeout=10).read())["fault"] == "down"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = page.inner_text("body")
        if re.search(r"DOWN\s+vector-store", body) and "dependents: search-api" in body:
            break
        time.sleep(1)
    assert re.search(r"DOWN\s+vector-store", body), body[:3000]
    assert "connection refused" in body
    # search-api fails behind it: named under the incident, not repeated as a tile of its own
    assert "probable root cause vector-store" in body and "dependents: search-api" in body, body[:3000]
    assert "1 dependent(s) folded here" in body
    assert not re.search(r"DOWN\s+search-api", body), body[:3000]
    proc.send_signal(2)  # Ctrl-C
    proc.wait(timeout=30)
    assert proc.returncode == 0
    text = out.read_text()
    assert "stopping collector" in text and "stopping dashboard" in text
