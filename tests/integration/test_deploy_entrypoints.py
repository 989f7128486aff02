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
import urllib.request
from pathlib import Path

import pytest
import yaml

from sandbox.services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


def image_command() -> list[str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    runtime = text.split("AS runtime", 1)[1]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", runtime, re.M).group(1))
    command = json.loads(re.search(r"^CMD (.*)$", runtime, re.M).group(1))
    return entrypoint + command


def start(argv: list[str], config: Path, log: Path) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name(argv[0]))  # the console script in this venv, like the image's PATH
    env = dict(os.environ, HULK_OPS_CONFIG=str(config))
    return subprocess.Popen([exe, *argv[1:]], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


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
        assert f"127.0.0.1:{port}/metrics" in result.stdout
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


def test_healthcheck_reads_the_role_from_a_command_line():
    from hulk_ops.entrypoints.healthcheck import health_url

    assert health_url(["hulk-ops", "collect"]) == "http://127.0.0.1:9464/metrics"
    assert health_url(["hulk-ops", "collect", "--metrics-port=9500"]) == "http://127.0.0.1:9500/metrics"
    assert health_url(["python", "-m", "streamlit", "run", "app.py", "--server.port", "8600"]) == \
        "http://127.0.0.1:8600/_stcore/health"
    assert health_url(["hulk-ops", "dashboard"]) == "http://127.0.0.1:8501/_stcore/health"
    assert health_url(["hulk-ops", "collect", "--metrics-port", "1", "--metrics-port", "2"]).endswith(":2/metrics")
    assert health_url(["sleep", "10"]) is None
