"""Browser fixtures: Playwright driving Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.services import free_port, stop_process, wait_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = os.environ.get("HULK_OPS_SCREENSHOTS")  # a folder: e2e tests save the README's pictures there


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium (python -m sandbox.services "
                    "install --with chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def dashboard_url(tmp_path: Path):
    """dashboard_url(config_path) -> URL of a `hulk-ops dashboard` subprocess, stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start(config_path: Path) -> str:
        port = free_port()
        log = open(tmp_path / f"dashboard-{port}.log", "wb")
        env = dict(os.environ, STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_urlsafe(48))  # needed with auth:
        proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", "dashboard", "--config", str(config_path),
                                 "--port", str(port)], stdout=log, stderr=log, start_new_session=True, env=env)
        procs.append(proc)
        wait_port(port, 60, proc, "dashboard")
        return f"http://127.0.0.1:{port}"

    yield _start
    for proc in procs:
        stop_process(proc)


def screenshot(page, name: str, ready_text: str | None = None, attempts: int = 20) -> None:
    """Save a full-page PNG when HULK_OPS_SCREENSHOTS is set. Live pages re-render every few seconds (the
    fragment shows skeletons meanwhile): with `ready_text`, retry until that text is on the page both before
    and after the shot."""
    if not SCREENSHOTS:
        return
    import time

    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    path = str(Path(SCREENSHOTS) / f"{name}.png")
    for _ in range(attempts):
        if ready_text is None or ready_text in page.inner_text("body"):
            page.screenshot(path=path, full_page=True)
            if ready_text is None or ready_text in page.inner_text("body"):
                return
        time.sleep(0.5)
    page.screenshot(path=path, full_page=True)
