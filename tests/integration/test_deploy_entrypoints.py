"""The image's commands, run here as the container would run them (no Docker engine on this machine).

The Dockerfile's ENTRYPOINT + CMD (collector) and the dashboard command from compose.yaml are
started with a real config; the image's HEALTHCHECK (`python -m hulk_ops.entrypoints.healthcheck`) must say
healthy for each role while it runs, and the collector must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from sandbox.services import free_port, wait_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def image_command() -> list[str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    runtime = text.split("AS runtime", 1)[1]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", runtime, re.M).group(1))
    command = json.loads(re.search(r"^CMD (.*)$", runtime, re.M).group(1))
    return entrypoint + command


def start(argv: list[str], config: Path, log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name(argv[0]))  # the console script in this venv, like the image's PATH
    env = dict(os.environ, HULK_OPS_CONFIG=str(config))
    return subprocess.Popen([exe, *argv[1:]], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=cwd)


def compose_setup(tmp_path: Path, redis_url: str, prefix: str, postgres_url: str) -> tuple[Path, dict[str, str]]:
    """compose's `setup` service run as compose runs it, then pointed at this machine's servers (its auth, audit
    log and cookie secret kept): (its output directory, the generated admin's credentials)."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    setup = compose["services"]["setup"]
    host = {v.split(":")[1]: str(ROOT / v.split(":")[0]) for v in setup["volumes"] if v.startswith("./")}
    out = tmp_path / "etc-hulk-ops"
    out.mkdir()
    argv = [host.get(a, a) for a in setup["command"]]
    argv[argv.index("--out") + 1] = str(out)
    env = {**os.environ, "POSTGRES_PASSWORD": "p", "NEO4J_PASSWORD": "n"}
    done = subprocess.run([sys.executable, host[setup["entrypoint"][1]], *argv], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load((out / "config.yaml").read_text())
    assert data["auth"]["users"][0]["name"] == "admin" and data["audit"]["url"]
    data.update(store={"redis_url": redis_url, "prefix": prefix}, audit={"url": postgres_url},
                targets=[{"name": "cache", "kind": "redis", "url": redis_url, "interval_s": 1.0}])
    (out / "config.yaml").write_text(yaml.safe_dump(data))
    lines = (out / "admin-credentials.txt").read_text().splitlines()
    return out, dict(line.split(": ", 1) for line in lines)


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hulk_ops.entrypoints.healthcheck", "--pid", str(pid)],
                          capture_output=True, text=True, timeout=20)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


@pytest.fixture
def config(write_config, redis_server) -> Path:
    return write_config([{"name": "cache", "kind": "redis", "url": redis_server.url, "interval_s": 1.0}])


def test_image_default_command_runs_the_collector_and_is_healthy(config, tmp_path):
    port = free_port()
    argv = [*image_command(), "--metrics-host", "127.0.0.1", "--metrics-port", str(port)]  # last one wins
    assert argv[:2] == ["hulk-ops", "collect"]
    proc = start(argv, config, tmp_path / "collector.log")
    try:
        wait_port(port, 60, proc, "hulk-ops collect")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert b"hulk_ops_targets_owned" in resp.read()
        result = healthcheck(proc.pid)
        assert result.returncode == 0, result.stderr
        assert f"127.0.0.1:{port}/healthz" in result.stdout
    finally:
        code = stop(proc)
    assert code == 0, (tmp_path / "collector.log").read_text(errors="replace")[-2000:]
    assert healthcheck(proc.pid).returncode == 1  # gone: unhealthy, not an exception


@pytest.mark.timeout(120)
def test_dashboard_command_from_compose_serves_and_is_healthy(config, tmp_path):
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    command = compose["services"]["dashboard"]["command"]
    port = free_port()
    proc = start(["hulk-ops", *command, "--host", "127.0.0.1", "--port", str(port)], config, tmp_path / "dash.log")
    try:
        wait_port(port, 90, proc, "hulk-ops dashboard")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as resp:
                    assert resp.read().strip() == b"ok"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        result = healthcheck(proc.pid)  # the process is now `python -m streamlit run ...` (execve)
        assert result.returncode == 0, result.stderr
        assert "/_stcore/health" in result.stdout
    finally:
        stop(proc)


@pytest.mark.timeout(120)
def test_compose_dashboard_with_the_setup_login_and_the_api_serve_and_are_healthy(
        tmp_path, store_redis_url, store_prefix, postgres_server):
    """The compose stack's auth as compose sets it up: the dashboard (in its working_dir, where setup left the
    cookie secret) starts with a login configured, and the api service answers the generated admin's token."""
    out, credentials = compose_setup(tmp_path, store_redis_url, store_prefix, postgres_server.url)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["dashboard"]["working_dir"] == "/etc/hulk-ops"
    config = out / "config.yaml"
    api_port, dash_port = free_port(), free_port()
    api = start(["hulk-ops", *services["api"]["command"], "--host", "127.0.0.1", "--port", str(api_port)], config,
                tmp_path / "api.log")
    dash = start(["hulk-ops", *services["dashboard"]["command"], "--host", "127.0.0.1", "--port", str(dash_port)],
                 config, tmp_path / "dash.log", cwd=out)
    try:
        wait_port(api_port, 60, api, "hulk-ops api")
        url = f"http://127.0.0.1:{api_port}/api/v1/targets"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        token = credentials["API token (HULK_OPS_TOKEN, Bearer)"]
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert [t["name"] for t in json.loads(resp.read())["targets"]] == ["cache"]
        result = healthcheck(api.pid)
        assert result.returncode == 0 and f"127.0.0.1:{api_port}/healthz" in result.stdout, result.stderr
        wait_port(dash_port, 90, dash, "hulk-ops dashboard")  # exits 2 first if the cookie secret is not found
        result = wait_for(lambda: healthcheck(dash.pid).returncode == 0, 30, 0.5)
        assert result
    finally:
        assert stop(api) == 0, (tmp_path / "api.log").read_text(errors="replace")[-2000:]
        stop(dash)


def test_healthcheck_reads_the_role_from_a_command_line():
    from hulk_ops.entrypoints.healthcheck import health_url

    assert health_url(["hulk-ops", "collect"]) == "http://127.0.0.1:9464/healthz"
    assert health_url(["hulk-ops", "collect", "--metrics-port=9500"]) == "http://127.0.0.1:9500/healthz"
    assert health_url(["python", "-m", "streamlit", "run", "app.py", "--server.port", "8600"]) == \
        "http://127.0.0.1:8600/_stcore/health"
    assert health_url(["hulk-ops", "dashboard"]) == "http://127.0.0.1:8501/_stcore/health"
    assert health_url(["hulk-ops", "api", "--port", "8600"]) == "http://127.0.0.1:8600/healthz"
    assert health_url(["hulk-ops", "api"]) == "http://127.0.0.1:8502/healthz"
    assert health_url(["hulk-ops", "collect", "--metrics-port", "1", "--metrics-port", "2"]).endswith(":2/healthz")
    assert health_url(["sleep", "10"]) is None
