"""A third-party kind installed beside hulk-ops: found by the registry through its entry point, then used by
config check, probe, the collector and the capacity page, with no hulk-ops file edited. Two broken plugins
installed with it (one fails to import, one takes a built-in kind's name) are reported and harm nobody.

"Installed" is what pip leaves in site-packages: the package and a ``<name>.dist-info`` with METADATA and
entry_points.txt, here in a private directory put on sys.path (and PYTHONPATH for child processes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
import yaml

from hulk_ops.core import breach
from hulk_ops.core.config import ConfigError, load_config, parse_config
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.probes import registry
from tests.conformance import assert_catalog_covers, assert_emitted_in_catalog

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]
PLUGIN = Path(__file__).resolve().parents[1] / "plugin_dist"
ROOT = Path(__file__).resolve().parents[2]


def install(site: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Lay a distribution out in `site` as an installer would: its modules and its dist-info."""
    for module, source in modules.items():
        (site / module).mkdir(parents=True, exist_ok=True)
        (site / module / "__init__.py").write_text(source, encoding="utf-8")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}", encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    site = tmp_path / "site-packages"
    site.mkdir()
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    shutil.copytree(PLUGIN / "hulk_disk_kind", site / "hulk_disk_kind")
    install(site, project["name"], project["version"], project["entry-points"][registry.GROUP], {})
    install(site, "hulk-broken-kind", "0.1.0", {"broken": "hulk_broken_kind"},
            {"hulk_broken_kind": "raise ImportError('libfoo.so.1: cannot open shared object file')\n"})
    install(site, "hulk-clash-kind", "0.1.0", {"redis": "hulk_disk_kind"}, {})
    sys.path.insert(0, str(site))
    registry.refresh()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for module in ("hulk_disk_kind", "hulk_broken_kind"):
            sys.modules.pop(module, None)
        registry.refresh()


def run_cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "hulk_ops", *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_the_registry_finds_the_plugin_and_reports_the_broken_ones(site: Path) -> None:
    entry = registry.entries()["disk"]
    assert (entry.dist, entry.module) == ("hulk-disk-kind", "hulk_disk_kind")
    assert registry.entries()["redis"].module == "hulk_ops.probes.redis"  # a plugin cannot take a built-in's name
    assert_catalog_covers("disk")
    assert registry.display_name("disk") == "Disk"
    with pytest.raises(registry.KindError, match="libfoo"):
        registry.module("broken")
    problems = "\n".join(registry.problems())
    assert "plugin hulk-clash-kind (redis = hulk_disk_kind): ignored, kind 'redis' is already registered by " \
           "hulk-ops" in problems
    assert "kind 'broken' (hulk-broken-kind: hulk_broken_kind) failed to import: ImportError: libfoo" in problems
    assert set(registry.modules()) >= {"disk", "redis", "postgres"}  # everyone else still loads


def test_config_check_and_probe_use_the_plugin(site: Path, tmp_path: Path, write_config) -> None:
    path = write_config([{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}"},
                         {"name": "cache", "kind": "redis", "url": "redis://127.0.0.1:6379"}])
    done = run_cli(site, "config", "check", str(path))
    assert done.returncode == 0 and "2 targets (disk, redis)" in done.stdout, done.stderr
    assert "hulk-ops: warning: plugin hulk-clash-kind (redis = hulk_disk_kind): ignored" in done.stderr
    done = run_cli(site, "probe", "--config", str(path), "--json", "--target", "root-fs")
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout.splitlines()[0])
    assert result["kind"] == "disk" and result["status"] == "up" and result["metrics"]["size_bytes"] > 0

    bad = write_config([{"name": "x", "kind": "broken", "url": "file:///"}])
    done = run_cli(site, "config", "check", str(bad))
    assert done.returncode == 2
    assert "target 'x' (targets[0]): kind: kind 'broken' (hulk-broken-kind: hulk_broken_kind) failed to import: " \
           "ImportError: libfoo.so.1" in done.stderr
    with pytest.raises(ConfigError, match="must be file:///absolute/path"):
        load_config(write_config([{"name": "y", "kind": "disk", "url": "http://h/"}]))


async def test_the_plugins_rule_message_names_its_object(site: Path, tmp_path: Path) -> None:
    from hulk_ops.entrypoints.probe_once import probe_once

    config = parse_config(yaml.safe_dump({"targets": [{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}",
                                                       "rules": ["used_pct >= 0", "latency_ms >= 0"]}]}))
    [result] = await probe_once(config, config.targets)
    assert result.status == "degraded"
    described, generic = result.error.split("; ")
    assert described == f"disk {tmp_path}: {breach.number(result.metrics['used_pct'])}% used"
    assert generic.startswith("latency_ms = ") and generic.endswith("(>= 0)")


async def test_the_collector_stores_it_and_the_capacity_page_shows_it(site: Path, tmp_path: Path, write_config,
                                                                       store_redis_url: str, store_prefix: str,
                                                                       open_page) -> None:
    path = write_config([{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}", "interval_s": 1}])
    config = load_config(path)
    stop = asyncio.Event()
    task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
    client = redis.Redis.from_url(store_redis_url)
    try:
        for _ in range(50):
            raw = client.hget(f"{store_prefix}latest", "root-fs")
            if raw:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        client.close()
    assert raw, "the collector stored no result of the plugin's target"
    latest = orjson.loads(raw)
    assert latest["status"] == "up", latest
    from hulk_ops.core.model import ProbeResult

    assert_emitted_in_catalog(ProbeResult(**{k: latest[k] for k in ("target", "kind", "status", "latency_ms",
                                                                     "version", "metrics", "error", "observed_at")}))

    at = await asyncio.to_thread(open_page, path, "capacity")
    assert [t.label for t in at.tabs] == ["Disk"]
    rows = at.dataframe[0].value.set_index("resource")
    assert rows.loc["space", "target"] == "root-fs" and rows.loc["space", "limit"] != "-"
