"""A third-party kind installed into a virtualenv beside hulk-ops: found by the registry through its entry point,
then used by config check, probe, the collector and the capacity page, with no hulk-ops file edited. Two broken
plugins installed with it (one fails to import, one takes a built-in kind's name) are reported by name and error
and harm nobody.

The distributions are real: tests/plugin_dist and two written here are built by their build backend (hatchling)
and installed with `uv pip install` into a throwaway venv made for this module, which sees the project's own
packages through a .pth file (the shared .venv other tests use is left alone). uv is the one make uses
(`scripts/bootstrap.sh --find`); it builds offline, from the cache it filled when it built hulk-ops itself.
Everything that uses the plugin runs as a child process of that venv's Python.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from hulk_ops.core import breach

pytestmark = pytest.mark.integration
PLUGIN = Path(__file__).resolve().parents[1] / "plugin_dist"
ROOT = Path(__file__).resolve().parents[2]
GROUP = "hulk_ops.kinds"


def _distribution(where: Path, name: str, module: str, entry_points: dict[str, str], source: str) -> Path:
    """A source tree of one distribution: pyproject.toml (entry points in GROUP) and its package."""
    lines = "".join(f'{kind} = "{target}"\n' for kind, target in entry_points.items())
    (where / module).mkdir(parents=True)
    (where / module / "__init__.py").write_text(source, encoding="utf-8")
    (where / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "0.1.0"
        requires-python = ">=3.11"

        [project.entry-points."{GROUP}"]
        """) + lines + textwrap.dedent("""
        [build-system]
        requires = ["hatchling>=1.25"]
        build-backend = "hatchling.build"
        """), encoding="utf-8")
    return where


def _uv() -> str:
    found = subprocess.run(["sh", "scripts/bootstrap.sh", "--find"], cwd=ROOT, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
    assert found.returncode == 0, found.stderr
    return str(ROOT / found.stdout.strip())


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh venv holding the three plugin distributions, hulk-ops importable beside them."""
    tmp = tmp_path_factory.mktemp("plugin-venv")
    uv, env = _uv(), _env()
    done = subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(tmp / "venv")], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr
    python = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, env=env, check=True, timeout=60).stdout.strip()
    # the project's site-packages as a site dir of its own, so its .pth files (the editable hulk-ops) apply too
    project_site = sysconfig.get_paths()["purelib"]
    Path(site, "hulk_ops_project.pth").write_text(f"import site; site.addsitedir({project_site!r})\n",
                                                  encoding="utf-8")
    broken = _distribution(tmp / "broken", "hulk-broken-kind", "hulk_broken_kind", {"broken": "hulk_broken_kind"},
                           "raise ImportError('libfoo.so.1: cannot open shared object file')\n")
    clash = _distribution(tmp / "clash", "hulk-clash-kind", "hulk_clash_kind", {"redis": "hulk_clash_kind"},
                          "raise RuntimeError('a kind whose name is taken is never imported')\n")
    done = subprocess.run([uv, "pip", "install", "--offline", "--no-deps", "--python", str(python), str(PLUGIN),
                           str(broken), str(clash)], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stderr
    return python


def _env() -> dict[str, str]:
    """This process's environment without what would make a child see another venv or extra paths."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def run_cli(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "hulk_ops", *args], capture_output=True, text=True, env=_env(),
                          timeout=120, stdin=subprocess.DEVNULL, cwd=python.parents[1])


def run_python(python: Path, code: str, **env: str) -> dict[str, Any]:
    """Run `code` in the venv; it prints one JSON object, returned."""
    done = subprocess.run([str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**_env(), **env}, timeout=180, stdin=subprocess.DEVNULL, cwd=python.parents[1])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_plugins_are_installed_distributions_of_the_venv(venv: Path) -> None:
    found = run_python(venv, """
        import importlib.metadata as md, json, sys
        out = {}
        for name in ("hulk-disk-kind", "hulk-broken-kind", "hulk-clash-kind", "hulk-ops"):
            dist = md.distribution(name)
            out[name] = {"at": str(dist.locate_file("")), "kinds": sorted(e.name for e in dist.entry_points
                                                                        if e.group == "hulk_ops.kinds")}
        out["prefix"] = sys.prefix
        print(json.dumps(out))
    """)
    prefix = Path(found["prefix"])
    for name, kinds in (("hulk-disk-kind", ["disk"]), ("hulk-broken-kind", ["broken"]), ("hulk-clash-kind", ["redis"])):
        assert Path(found[name]["at"]).is_relative_to(prefix), found  # in the throwaway venv's site-packages
        assert found[name]["kinds"] == kinds
    assert not Path(found["hulk-ops"]["at"]).is_relative_to(prefix)  # hulk-ops is the project's, seen through .pth
    assert "redis" in found["hulk-ops"]["kinds"]


def test_the_registry_finds_the_plugin_and_reports_the_broken_ones(venv: Path) -> None:
    found = run_python(venv, """
        import json
        from hulk_ops.probes import registry
        from tests.conformance import assert_catalog_covers

        assert_catalog_covers("disk")
        try:
            registry.module("broken")
            broken = None
        except registry.KindError as exc:
            broken = str(exc)
        entry = registry.entries()["disk"]
        print(json.dumps({"disk": [entry.dist, entry.module], "redis": registry.entries()["redis"].module,
                          "display": registry.display_name("disk"), "broken": broken,
                          "problems": registry.problems(), "modules": sorted(registry.modules())}))
    """)
    assert found["disk"] == ["hulk-disk-kind", "hulk_disk_kind"]
    assert found["redis"] == "hulk_ops.probes.redis"  # a plugin cannot take a built-in's name
    assert found["display"] == "Disk"
    assert "libfoo" in found["broken"]
    problems = "\n".join(found["problems"])
    assert "plugin hulk-clash-kind (redis = hulk_clash_kind): ignored, kind 'redis' is already registered by " \
           "hulk-ops" in problems
    assert "kind 'broken' (hulk-broken-kind: hulk_broken_kind) failed to import: ImportError: libfoo" in problems
    assert {"disk", "redis", "postgres"} <= set(found["modules"])  # everyone else still loads
    assert "broken" not in found["modules"]


def test_config_check_and_probe_use_the_plugin(venv: Path, tmp_path: Path, write_config) -> None:
    path = write_config([{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}"},
                         {"name": "cache", "kind": "redis", "url": "redis://127.0.0.1:6379"}])
    done = run_cli(venv, "config", "check", str(path))
    assert done.returncode == 0 and "2 targets (disk, redis)" in done.stdout, done.stderr
    assert "hulk-ops: warning: plugin hulk-clash-kind (redis = hulk_clash_kind): ignored" in done.stderr
    assert "broken" not in done.stderr  # kinds are imported when a target uses them: this config does not
    done = run_cli(venv, "probe", "--config", str(path), "--json", "--target", "root-fs")
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout.splitlines()[0])
    assert result["kind"] == "disk" and result["status"] == "up" and result["metrics"]["size_bytes"] > 0

    bad = write_config([{"name": "x", "kind": "broken", "url": "file:///"}])
    done = run_cli(venv, "config", "check", str(bad))
    assert done.returncode == 2
    assert "target 'x' (targets[0]): kind: kind 'broken' (hulk-broken-kind: hulk_broken_kind) failed to import: " \
           "ImportError: libfoo.so.1" in done.stderr
    done = run_cli(venv, "config", "check", str(write_config([{"name": "y", "kind": "disk", "url": "http://h/"}])))
    assert done.returncode == 2 and "must be file:///absolute/path" in done.stderr


def test_the_plugins_rule_message_names_its_object(venv: Path, tmp_path: Path, write_config) -> None:
    path = write_config([{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}",
                          "rules": ["used_pct >= 0", "latency_ms >= 0"]}])
    done = run_cli(venv, "probe", "--config", str(path), "--json")
    assert done.returncode == 1, done.stderr  # degraded: not up
    result = orjson.loads(done.stdout.splitlines()[0])
    assert result["status"] == "degraded"
    described, generic = result["error"].split("; ")
    assert described == f"disk {tmp_path}: {breach.number(result['metrics']['used_pct'])}% used"
    assert generic.startswith("latency_ms = ") and generic.endswith("(>= 0)")


def test_the_collector_stores_it_and_the_capacity_page_shows_it(venv: Path, tmp_path: Path, write_config,
                                                                 store_redis_url: str, store_prefix: str) -> None:
    path = write_config([{"name": "root-fs", "kind": "disk", "url": f"file://{tmp_path}", "interval_s": 1}])
    collector = subprocess.Popen([str(venv), "-m", "hulk_ops", "collect", "--config", str(path), "--metrics-port",
                                  "0"], env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, cwd=venv.parents[1])
    client = redis.Redis.from_url(store_redis_url)
    raw = None
    try:
        deadline = time.monotonic() + 90  # the child imports everything first: slow on a loaded machine
        while time.monotonic() < deadline and collector.poll() is None:
            raw = client.hget(f"{store_prefix}latest", "root-fs")
            if raw:
                break
            time.sleep(0.2)
    finally:
        client.close()
        collector.send_signal(signal.SIGTERM)
        try:
            _, stderr = collector.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            collector.kill()
            _, stderr = collector.communicate()
    assert raw, f"the collector stored no result of the plugin's target (exit {collector.returncode}): {stderr}"
    assert collector.returncode == 0, stderr
    latest = orjson.loads(raw)
    assert latest["status"] == "up", latest

    page = run_python(venv, """
        import json, os, orjson, redis
        from streamlit.testing.v1 import AppTest
        from hulk_ops.core.model import ProbeResult
        from tests.conformance import assert_emitted_in_catalog
        from tests.fixtures_views import APP, switch

        stored = redis.Redis.from_url(os.environ["STORE_URL"]).hget(os.environ["STORE_PREFIX"] + "latest", "root-fs")
        fields = ("target", "kind", "status", "latency_ms", "version", "metrics", "error", "observed_at")
        assert_emitted_in_catalog(ProbeResult(**{k: orjson.loads(stored)[k] for k in fields}))
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
        switch(at, "capacity")
        at.run()
        rows = at.dataframe[0].value if at.dataframe else None
        print(json.dumps({"exceptions": [e.value for e in at.exception], "tabs": [t.label for t in at.tabs],
                          "rows": [] if rows is None else rows.astype(str).to_dict("records")}))
    """, HULK_OPS_CONFIG=str(path), STORE_URL=store_redis_url, STORE_PREFIX=store_prefix)
    assert not page["exceptions"], page["exceptions"]
    assert page["tabs"] == ["Disk"]
    space = [r for r in page["rows"] if r["resource"] == "space"]
    assert len(space) == 1 and space[0]["target"] == "root-fs" and space[0]["limit"] != "-", page["rows"]
