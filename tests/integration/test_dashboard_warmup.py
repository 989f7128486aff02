"""The dashboard's start-up warm-up (hulk_ops/dashboard/serve.py): on a seeded store it fills the caches the first page
needs (every settled hour summarised, latest results parsed) and freezes what it built out of the GC's sight;
with the store down it reports the failed step and lets the server start."""

from __future__ import annotations

import gc
import time

import pytest

from bench.fleet import fleet_targets, seed_fleet
from hulk_ops.collectors.codec import hour_of
from hulk_ops.core.config import load_config
from hulk_ops.dashboard import context, serve
from hulk_ops.dashboard.readmodel.rollup import SETTLE_S, fleet_rollup


@pytest.fixture(autouse=True)
def clean_process_state():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    context.preload(None)
    gc.unfreeze()


def test_warm_up_summarises_the_settled_hours_before_the_first_page(write_config, monkeypatch) -> None:
    path = write_config(fleet_targets(40))
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    config = load_config(path)
    now = time.time()
    seed_fleet(config, 4.0, now)

    timings = serve.warm(config)

    assert set(timings) == {"imports", "config", "read model", "long range", "radar rings"}
    assert all(seconds >= 0 for seconds in timings.values()), timings  # no step failed
    assert context.config() is config  # handed over by the CLI, not parsed again
    model = context.read_model()
    settled = [h for h in range(hour_of(now - 86400), hour_of(now) + 1) if now >= (h + 1) * 3600 + SETTLE_S]
    built = fleet_rollup(model)._blocks
    seeded = [h for h in settled if h >= hour_of(now - 4 * 3600)]
    assert seeded and set(seeded) <= set(built)  # the 24 h views will not read those hours again
    total = sum(int(built[h].counts.sum()) for h in seeded)
    assert total >= 40 * 3 * 200  # ~240 samples per target and settled hour were summarised
    assert len(model._parsed) == 40  # every newest result parsed once
    assert gc.get_freeze_count() > 0


def test_warm_up_with_the_store_down_reports_and_returns(tmp_path, monkeypatch, closed_port) -> None:
    path = tmp_path / "down.yaml"
    path.write_text(f"store: {{redis_url: 'redis://127.0.0.1:{closed_port}/0'}}\n"
                    "targets: [{name: cache, kind: redis, url: 'redis://h:1'}]\n", encoding="utf-8")
    monkeypatch.setenv("HULK_OPS_CONFIG", str(path))
    started = time.monotonic()
    timings = serve.warm(load_config(path))
    assert timings["read model"] == -1.0  # failed, logged, skipped
    assert timings["imports"] >= 0 and timings["config"] >= 0
    assert time.monotonic() - started < 20  # a refused connection fails fast (no retries)
