"""`hulk-ops demo` / `make demo`: a live sandbox on loopback, stopped with Ctrl-C.

Starts (or reuses) Redis, PostgreSQL and NATS JetStream, a private Prometheus scraping the
collector, the protocol simulators for the backends that cannot run here (Qdrant, Neo4j,
Kubernetes, RunPod), a little traffic so the charts move, then the collector and the dashboard on a
generated demo config. Everything it started is stopped on exit, in reverse order.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox.services import Endpoint, Services, free_port, port_open, stop_process, wait_port

DEMO_REDIS_DB = 1


def pick_port(preferred: int) -> int:
    return preferred if not port_open(preferred) else free_port()


class Demo:
    def __init__(self, workdir: Path, port: int = 8501) -> None:
        self.workdir = workdir
        self.port = port
        self.services = Services(workdir / "services")
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stoppers: list[Any] = []
        self.metrics_port = pick_port(9464)
        self.config_path = workdir / "hulk-ops.demo.yaml"
        # the usual `.demo` keeps plain names; any other workdir (tests) gets its own stream/schema/prefix
        self.suffix = "" if workdir.name == ".demo" else "_" + hashlib.blake2b(str(workdir).encode(),
                                                                               digest_size=3).hexdigest()

    # -- start --------------------------------------------------------------------------------
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        core = self.services.core()
        for endpoint in core.values():
            say(f"{endpoint.name:10} {endpoint.url} ({'started' if endpoint.started else 'reused'})")
        prometheus = self.services.prometheus(self.prometheus_config(), port=pick_port(9090))
        say(f"{'prometheus':10} {prometheus.url} (started, scraping the collector)")
        extra_targets = self.start_simulators()
        self.start_traffic(core)
        config = self.demo_config(core, prometheus, extra_targets)
        if self.suffix:  # a test's demo: its audit schema goes when it stops (the usual .demo keeps its log)
            self.stoppers.append(lambda: drop_schema(core["postgres"].url, config["audit"]["schema_name"]))
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        say(f"{'config':10} {self.config_path}")
        self.spawn("collector", ["collect", "--config", str(self.config_path),
                                 "--metrics-port", str(self.metrics_port)])
        wait_port(self.metrics_port, 60, self.processes[-1][1], "collector /metrics")
        self.spawn("dashboard", ["dashboard", "--config", str(self.config_path), "--port", str(self.port),
                                 "--host", "127.0.0.1"])
        wait_port(self.port, 90, self.processes[-1][1], "dashboard")

    def spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "hulk_ops.cli", *args], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.processes.append((name, proc))

    def start_simulators(self) -> list[dict[str, Any]]:
        """Start the protocol simulators that exist; return their demo targets."""
        return []

    def start_traffic(self, core: dict[str, Endpoint]) -> None:
        from sandbox.traffic import Traffic

        traffic = Traffic(redis_url=f"{core['redis'].url}/{DEMO_REDIS_DB}", nats_url=core["nats"].url,
                          postgres_url=core["postgres"].url, suffix=self.suffix)
        traffic.start()
        self.stoppers.append(traffic.stop)

    def prometheus_config(self) -> str:
        return yaml.safe_dump({
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "scrape_configs": [
                {"job_name": "hulk-ops-collector", "static_configs": [
                    {"targets": [f"127.0.0.1:{self.metrics_port}"]}]},
            ],
        })

    def demo_config(self, core: dict[str, Endpoint], prometheus: Endpoint,
                    extra_targets: list[dict[str, Any]]) -> dict[str, Any]:
        labels = {"env": "demo", "team": "platform"}
        targets: list[dict[str, Any]] = [
            {"name": "cache", "kind": "redis", "url": core["redis"].url, "interval_s": 5,
             "labels": {**labels, "tier": "data"}},
            {"name": "orders-db", "kind": "postgres", "url": core["postgres"].url, "interval_s": 5,
             "labels": {**labels, "tier": "data"}, "depends_on": []},
            {"name": "event-bus", "kind": "nats", "url": core["nats"].url, "interval_s": 5,
             "labels": {**labels, "tier": "messaging"}, "rules": ["consumer.*.pending > 500"]},
            *extra_targets,
        ]
        from actions.identity import demo_auth_section

        return {
            "store": {"redis_url": f"{core['redis'].url}/{DEMO_REDIS_DB}", "prefix": f"hulk{self.suffix}:"},
            "dashboard": {"title": "hulk-ops · demo sandbox", "refresh_s": 5},
            # guarded actions: audited in the demo PostgreSQL; one local user per role (see the login page)
            "audit": {"url": core["postgres"].url, "schema_name": f"hulk_audit{self.suffix}"},
            "auth": demo_auth_section(),
            "targets": targets,
        }

    # -- stop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        for name, proc in reversed(self.processes):
            say(f"stopping {name}")
            stop_process(proc, timeout=5)
        for stopper in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stopper()
        self.services.stop()


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def run_demo(port: int = 8501, workdir: str | None = None) -> int:
    demo = Demo(Path(workdir or ".demo").resolve(), port=port)
    stop_requested = False

    def request_stop(_signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        demo.start()
        say(f"dashboard  http://localhost:{port}   (Ctrl-C stops everything the demo started)")
        while not stop_requested:
            for name, proc in demo.processes:
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; see {demo.workdir / (name + '.log')}")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    return 0
