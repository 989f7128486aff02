"""History import and export through the CLI on a real Redis: 30 days of generated history with known down
periods are imported into a store that keeps 24 h of raw history; the 30-day report and the Latency & SLOs
page give the availability computed here from the file; importing the file again changes nothing; a bad line
is refused by number with nothing written; export prints what was stored in the same format."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
import redis

from hulk_ops.core.config import load_config
from tests.views_support import set_last_write

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]
STEP_S = 300
TARGETS = {"ledger-db": "postgres", "session-cache": "redis", "events": "nats"}


def hulk(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hulk_ops", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def history(tmp_path, write_config, store_redis_url, store_prefix):
    now = time.time()
    targets = [{"name": n, "kind": k, "url": f"{k}://127.0.0.1:1", "interval_s": STEP_S} for n, k in TARGETS.items()]
    path = write_config(targets, store={"redis_url": store_redis_url, "prefix": store_prefix, "retention_h": 24},
                        slo={"availability": 99.5})
    start = now - 30 * 86_400
    stamps = start + np.arange(int((now - 600 - start) // STEP_S)) * STEP_S
    rng = np.random.default_rng(5)
    truth = {}
    lines = []
    for k, name in enumerate(TARGETS):
        # known outages: ledger-db down 3 h on day 4 and 40 min on day 20, events down 1 h on day 11
        down = np.zeros(stamps.size, dtype=bool)
        if name == "ledger-db":
            down |= (stamps >= start + 4 * 86_400) & (stamps < start + 4 * 86_400 + 3 * 3600)
            down |= (stamps >= start + 20 * 86_400) & (stamps < start + 20 * 86_400 + 2400)
        if name == "events":
            down |= (stamps >= start + 11 * 86_400) & (stamps < start + 11 * 86_400 + 3600)
        lat = rng.lognormal(np.log(1.5 + k), 0.4, stamps.size)
        truth[name] = (stamps, down, lat)
        for ts, d, v in zip(stamps, down, lat, strict=True):
            lines.append(orjson.dumps({
                "target": name, "kind": TARGETS[name], "status": "down" if d else "up",
                "latency_ms": None if d else round(float(v), 3), "version": "7.0", "error": "refused" if d else None,
                "metrics": {"used_memory_bytes": 1e6 + float(ts) % 1000} if name == "session-cache" else {},
                "observed_at": iso(float(ts))}))
    file = tmp_path / "history.jsonl"
    file.write_bytes(b"\n".join(lines) + b"\n")
    set_last_write(load_config(path), now)
    return path, file, truth, now


def _report(path) -> dict:
    out = hulk("report", "slo", "--config", str(path), "--window", "30d", "--json")
    assert out.returncode == 0, out.stderr
    return {r["target"]: r for r in map(orjson.loads, out.stdout.splitlines()) if "target" in r}


def test_import_thirty_days_report_page_and_idempotence(history, open_page):
    path, file, truth, _now = history
    done = hulk("history", "import", "--config", str(path), str(file))
    assert done.returncode == 0, done.stderr
    total = sum(s.size for s, _, _ in truth.values())
    assert f"{total:,} lines: " in done.stdout and " new and 0 already stored in the raw history" in done.stdout
    assert " 0 hour and " not in done.stdout
    rows = _report(path)
    for name, (stamps, down, _lat) in truth.items():
        inside = stamps >= rows[name]["window_start"]
        expected = 100 * (1 - down[inside].sum() / inside.sum())
        assert rows[name]["samples"] == int(inside.sum())
        assert rows[name]["availability_pct"] == pytest.approx(expected, abs=1e-9)

    again = hulk("history", "import", "--config", str(path), str(file))
    assert again.returncode == 0, again.stderr
    assert ": 0 new and " in again.stdout
    assert "0 hour and 0 day summaries written" in again.stdout
    stable = ("samples", "down", "availability_pct", "p95_ms", "budget_remaining_pct")
    after = _report(path)
    assert {n: [r[f] for f in stable] for n, r in after.items()} == {n: [r[f] for f in stable] for n, r in rows.items()}

    at = open_page(path, "latency", state={"latency_window": "30 d"})
    table = at.dataframe[1].value.set_index("target")
    for name in TARGETS:
        assert table.loc[name, "availability %"] == round(rows[name]["availability_pct"], 3)


def test_bad_line_refused_by_number_nothing_written(history, store_redis_url, store_prefix, tmp_path):
    path, file, _truth, _now = history
    lines = file.read_bytes().splitlines()
    bad = tmp_path / "bad.jsonl"
    stranger = b'{"target": "nope", "status": "up", "observed_at": "2026-11-01T00:00:00Z"}'
    bad.write_bytes(b"\n".join([*lines[:2], stranger, *lines[2:50]]) + b"\n")
    done = hulk("history", "import", "--config", str(path), str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: target 'nope' is not in the config (nothing imported)" in done.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(lines[0] + b"\n{not json\n")
    done = hulk("history", "import", "--config", str(path), str(broken))
    assert done.returncode == 2 and f"{broken}:2: not JSON" in done.stderr
    client = redis.Redis.from_url(store_redis_url)
    try:
        assert not [k for k in client.scan_iter(match=f"{store_prefix}*", count=1000) if b"last_write" not in k]
    finally:
        client.close()


def test_export_prints_what_is_stored(history):
    path, file, truth, now = history
    assert hulk("history", "import", "--config", str(path), str(file)).returncode == 0
    since = iso(now - 6 * 3600 - STEP_S / 2)  # between two samples (the store keeps tenths of a second)
    out = hulk("history", "export", "--config", str(path), "--target", "session-cache", "--since", since)
    assert out.returncode == 0, out.stderr
    exported = [orjson.loads(line) for line in out.stdout.splitlines()]
    stamps, _down, lat = truth["session-cache"]
    inside = stamps >= now - 6 * 3600 - STEP_S / 2
    assert len(exported) == int(inside.sum())
    first = exported[0]
    assert set(first) == {"target", "kind", "status", "latency_ms", "version", "metrics", "error", "observed_at"}
    kept = np.floor((stamps[inside][0] % 3600) * 10 + 1e-6) / 10 + stamps[inside][0] // 3600 * 3600  # tenths
    assert first["kind"] == "redis" and first["observed_at"] == iso(float(kept))
    assert first["latency_ms"] == pytest.approx(float(lat[inside][0]), rel=1e-3)
    assert first["metrics"]["used_memory_bytes"] == pytest.approx(1e6 + float(stamps[inside][0]) % 1000, rel=1e-6)
    assert hulk("history", "export", "--config", str(path), "--target", "ghost").returncode == 2


def test_radar_fitness_equals_what_the_rollups_hold_for_an_imported_month(history):
    path, file, _truth, _now = history
    assert hulk("history", "import", "--config", str(path), str(file)).returncode == 0
    slo = _report(path)
    out = hulk("report", "radar", "--config", str(path), "--json")
    assert out.returncode == 0, out.stderr
    radar = {r["name"]: r for r in map(orjson.loads, out.stdout.splitlines())}
    for component, target in (("PostgreSQL", "ledger-db"), ("Redis", "session-cache"), ("NATS JetStream", "events")):
        row = radar[component]
        assert row["samples_30d"] == slo[target]["samples"], component
        assert row["availability_30d_pct"] == pytest.approx(slo[target]["availability_pct"], abs=1e-4), component
        assert row["p95_30d_ms"] == pytest.approx(slo[target]["p95_ms"], rel=1e-3), component
