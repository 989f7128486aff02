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
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hulk_ops.dashboard.launch import COOKIE_ENV
from sandbox.services import Endpoint, ServiceError, Services, free_port, port_open, stop_process, wait_port

DEMO_REDIS_DB = 1


def pick_port(preferred: int) -> int:
    return preferred if not port_open(preferred) else free_port()


class Demo:
    def __init__(self, workdir: Path, port: int = 8501, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = port
        self.env = dict(env or {})  # extra environment for the collector and the dashboard (bench/soak.py)
        # the sandbox's login needs a cookie secret (`hulk-ops dashboard` refuses to start without one):
        # a random one per run, handed over in the environment, never printed
        self.cookie_secret = secrets.token_urlsafe(48)
        self.services = Services(workdir / "services")
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stoppers: list[Any] = []
        self.metrics_port = pick_port(9464)
        self.config_path = workdir / "hulk-ops.demo.yaml"
        self.control_url = ""
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
        extra_targets = self.start_simulators(core)
        try:
            mariadb = self.services.mariadb()
            say(f"{'mariadb':10} {mariadb.url} ({'started' if mariadb.started else 'reused'})")
            extra_targets.append({"name": "shop-db", "kind": "mysql", "url": mariadb.url, "interval_s": 5,
                                  "labels": {"env": "demo", "team": "platform", "tier": "data"}})
        except ServiceError as exc:  # optional: the demo runs without a MySQL target
            say(f"{'mariadb':10} not started ({exc})")
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
                                 "--host", "127.0.0.1"], env={COOKIE_ENV: self.cookie_secret})
        wait_port(self.port, 90, self.processes[-1][1], "dashboard")

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env, **(env or {}))
        proc = subprocess.Popen([sys.executable, "-m", "hulk_ops", *args], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.processes.append((name, proc))

    def start_simulators(self, core: dict[str, Endpoint]) -> list[dict[str, Any]]:
        """Start the protocol simulators and the demo's own search-api; return their targets."""
        from sandbox.control import ControlServer
        from sandbox.k8s_sim import DEFAULT_TOKEN, KubernetesSimulator
        from sandbox.neo4j_sim import DEFAULT_PASSWORD, Neo4jSimulator
        from sandbox.qdrant_sim import QdrantSimulator
        from sandbox.runpod_sim import DEFAULT_API_KEY, RunpodSimulator
        from sandbox.search_api import SearchApi

        qdrant = QdrantSimulator(port=pick_port(6333))
        neo4j = Neo4jSimulator(port=pick_port(7687))
        k8s = KubernetesSimulator(port=pick_port(6443))
        runpod = RunpodSimulator(port=pick_port(8790))
        sims: dict[str, Any] = {"qdrant": qdrant, "neo4j": neo4j, "k8s": k8s, "runpod": runpod}
        for sim in sims.values():
            sim.start()
            self.stoppers.append(sim.stop)
        search = SearchApi(qdrant.url, neo4j.url, core["redis"].url, port=pick_port(8081))
        search.start()
        self.stoppers.append(search.stop)
        sims["search-api"] = search
        for name, sim in sims.items():
            say(f"{name:10} {getattr(sim, 'url', sim.port)} (simulator)" if name != "search-api"
                else f"{name:10} {sim.url} (demo service: depends on qdrant, neo4j, redis)")
        control = ControlServer(sims, port=pick_port(8599))
        control.start()
        self.stoppers.append(control.stop)
        self.control_url = f"http://127.0.0.1:{control.port}"
        say(f"{'control':10} {self.control_url}  (stage incidents: see sandbox/control.py)")
        sim_labels = {"env": "demo", "sandbox": "simulator"}
        return [
            {"name": "vector-store", "kind": "qdrant", "url": qdrant.url, "interval_s": 5,
             "labels": {**sim_labels, "tier": "data"}},
            {"name": "knowledge-graph", "kind": "neo4j", "url": neo4j.url.replace("bolt://", "neo4j://"),
             "username": "neo4j", "password": DEFAULT_PASSWORD, "interval_s": 5,
             "labels": {**sim_labels, "tier": "data"}},
            {"name": "k8s-prod", "kind": "kubernetes", "url": k8s.url, "token": DEFAULT_TOKEN, "interval_s": 10,
             "labels": {**sim_labels, "tier": "compute", "env": "production"}},
            {"name": "gpu-cloud", "kind": "runpod", "url": runpod.url, "endpoint_url": runpod.endpoint_url,
             "api_key": DEFAULT_API_KEY, "endpoints": ["vllm7x2k9q4p1a", "sdxl3n8b5t1c6y"], "interval_s": 10,
             "timeout_s": 5, "labels": {**sim_labels, "tier": "cloud"}},
            {"name": "search-api", "kind": "http", "url": f"{search.url}/health", "interval_s": 5,
             "expect_body": "ok", "depends_on": ["vector-store", "knowledge-graph", "cache"],
             "labels": {"env": "demo", "tier": "app"}},
        ]

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
            {"name": "prometheus", "kind": "prometheus", "url": prometheus.url, "interval_s": 10,
             "labels": {**labels, "tier": "observability"},
             "queries": [
                 {"name": "probe_rate", "promql": "sum by (kind) (rate(hulk_ops_probes_total[1m]))"},
                 {"name": "cycle_lag_s", "promql": "max(hulk_ops_cycle_lag_seconds)"},
             ]},
            {"name": "dashboard", "kind": "http", "url": f"http://127.0.0.1:{self.port}/_stcore/health",
             "interval_s": 10, "labels": {**labels, "tier": "observability"}},
            *extra_targets,
        ]
        from hulk_ops.actions.identity import demo_auth_section

        return {
            "store": {"redis_url": f"{core['redis'].url}/{DEMO_REDIS_DB}", "prefix": f"hulk{self.suffix}:"},
            "dashboard": {"title": "hulk-ops · demo sandbox", "refresh_s": 5},
            # guarded actions: audited in the demo PostgreSQL; one local user per role (see the login page)
            "audit": {"url": core["postgres"].url, "schema_name": f"hulk_audit{self.suffix}"},
            "auth": demo_auth_section(),
            "actions": self.demo_actions(targets),
            "targets": targets,
        }

    @staticmethod
    def demo_actions(targets: list[dict[str, Any]]) -> dict[str, Any]:
        """Unit prices, a budget cap and the deployments of the simulated cluster that may be scaled
        (k8s-prod is labelled production: an operator's scale waits for an admin's approval)."""
        scale = [{"target": "k8s-prod", "namespace": ns, "deployment": name, "min": low, "max": high}
                 for ns, name, low, high in (("hulk-prod", "api-gateway", 2, 8), ("hulk-prod", "ingest-worker", 1, 6),
                                             ("ml", "embedder", 0, 4))]
        return {
            "prices": {"cpu_hour": 0.031, "gib_hour": 0.004, "gpu_hour": 1.10},
            "runpod": {"budget_usd": 50, "max_hours": 24},
            "scale": scale if any(t["name"] == "k8s-prod" for t in targets) else [],
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
    # Ctrl-C stops the demo even when started from a shell that ignores SIGINT for background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
