"""Fixtures for the page tests (load with `pytest_plugins = ["tests.fixtures_views"]`; helpers that read
what a page shows or write what other writers write are in tests/views_support.py).

`open_page(config_path, page, query=..., state=...)` renders one page of the real app (hulk_ops/dashboard/app.py,
its st.navigation router) with Streamlit's AppTest, on the store the config points at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "hulk_ops" / "dashboard" / "app.py")


def switch(at: AppTest, url_path: str) -> AppTest:
    """Select a page registered with st.navigation by its url_path (AppTest.switch_page wants files)."""
    if url_path:
        at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == url_path)
    return at


@pytest.fixture
def open_page(monkeypatch) -> Iterator[Any]:
    import streamlit as st

    st.cache_resource.clear()

    def _open(config_path: Path, page: str = "", query: dict[str, str] | None = None,
              state: dict[str, Any] | None = None) -> AppTest:
        monkeypatch.setenv("HULK_OPS_CONFIG", str(config_path))
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        switch(at, page)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        for key, value in (state or {}).items():
            at.session_state[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield _open
    st.cache_resource.clear()
