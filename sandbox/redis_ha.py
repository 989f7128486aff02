"""Redis groups of Debian's redis-server on loopback, for the tests and the benchmarks.

A Sentinel group, for the failover tests:
a master, its replicas and three sentinels, each on a free port, in a private directory. `kill_master()`
SIGKILLs the master (no shutdown, no last fsync); `wait_failover()` waits until the sentinels name another.
A Redis Cluster (`ClusterGroup`): masters (and replicas) created with `redis-cli --cluster create`.
Never the shared Redis: each group is started and stopped by whoever uses it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from sandbox.services import LOOPBACK, ServiceError, find_binary, free_port, stop_process, wait_port

MASTER_NAME = "hulkstore"


class SentinelGroup:
    def __init__(self, workdir: str | os.PathLike[str], replicas: int = 1, sentinels: int = 3,
                 down_after_ms: int = 1000) -> None:
        binary = find_binary("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (make servers)")
        self.binary = binary
        self.workdir = Path(workdir)
        self.down_after_ms = down_after_ms
        self.data_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port = self.data_ports[0]

    @property
    def addresses(self) -> list[str]:
        return [f"{LOOPBACK}:{p}" for p in self.sentinel_ports]

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.workdir / f"redis-{port}.log", "ab")
        self.processes[port] = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        wait_port(port, 15, self.processes[port], f"redis-server :{port}")

    def start(self) -> None:
        for port in self.data_ports:
            folder = self.workdir / f"data-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            argv = ["--port", str(port), "--bind", LOOPBACK, "--dir", str(folder), "--save", "", "--appendonly", "no",
                    "--daemonize", "no"]
            if port != self.master_port:
                argv += ["--replicaof", LOOPBACK, str(self.master_port)]
            self._spawn(port, argv)
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind {LOOPBACK}\ndir {self.workdir}\n"
                f"sentinel monitor {MASTER_NAME} {LOOPBACK} {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            self._spawn(port, [str(conf), "--sentinel"])
        self.wait_synced()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # every sentinel knows the master and its replicas
            if all(self._sentinel_view(p) == (self.master_port, len(self.data_ports) - 1)
                   for p in self.sentinel_ports):
                return
            time.sleep(0.1)
        raise ServiceError("the sentinels did not agree on the master and its replicas in 20 s")

    def _sentinel_view(self, port: int) -> tuple[int, int] | None:
        with contextlib.suppress(redis.RedisError), redis.Redis(host=LOOPBACK, port=port, socket_timeout=1) as s:
            master = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            replicas = s.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
            return int(master[1]), len(replicas)
        return None

    def wait_synced(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        with redis.Redis(host=LOOPBACK, port=self.master_port, socket_timeout=1) as m:
            while time.monotonic() < deadline:
                info = m.info("replication")
                online = sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                             and v.get("state") == "online")
                if online == len(self.data_ports) - 1:
                    return
                time.sleep(0.1)
        raise ServiceError("the replicas did not sync with the master")

    def master(self) -> int:
        """The master's port as the sentinels name it now."""
        for port in self.sentinel_ports:
            view = self._sentinel_view(port)
            if view is not None:
                return view[0]
        raise ServiceError("no sentinel answers")

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=port, socket_timeout=2)

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master()
        process = self.processes[port]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        return port

    def wait_failover(self, old: int, timeout: float = 30) -> int:
        """Wait until every live sentinel names another master and it answers as one; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [self._sentinel_view(p) for p in self.sentinel_ports]
            ports = {v[0] for v in views if v is not None}
            if len(ports) == 1 and old not in ports:
                (new,) = ports
                with contextlib.suppress(redis.RedisError), self.client(new) as c:
                    if c.info("replication").get("role") == "master":
                        return new
            time.sleep(0.05)
        raise ServiceError(f"no failover away from :{old} within {timeout} s")

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout=5)
        self.processes.clear()


class ClusterGroup:
    """A Redis Cluster of Debian's redis-server on loopback: `masters` masters (and `replicas` replicas of each),
    each with its own data and cluster bus port and node file in a private directory, joined by
    `redis-cli --cluster create`. Never the shared Redis."""

    def __init__(self, workdir: str | os.PathLike[str], masters: int = 3, replicas: int = 0,
                 node_timeout_ms: int = 2000) -> None:
        binary, cli = find_binary("redis-server"), find_binary("redis-cli")
        if binary is None or cli is None:
            raise ServiceError("redis-server and redis-cli are needed (make servers)")
        self.binary, self.cli = binary, cli
        self.workdir = Path(workdir)
        self.masters, self.replicas = masters, replicas
        self.node_timeout_ms = node_timeout_ms  # a master unreachable this long is failed over
        self.ports = [free_port() for _ in range(masters * (1 + replicas))]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The node a client is told about (it learns the others from it)."""
        return f"redis://{LOOPBACK}:{self.ports[0]}"

    def start(self) -> None:
        for port in self.ports:
            folder = self.workdir / f"node-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            log = open(self.workdir / f"redis-{port}.log", "ab")
            self.processes[port] = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", LOOPBACK, "--dir", str(folder), "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--cluster-enabled", "yes",
                 "--cluster-port", str(free_port()), "--cluster-config-file", str(folder / "nodes.conf"),
                 "--cluster-node-timeout", str(self.node_timeout_ms)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            wait_port(port, 15, self.processes[port], f"redis-server :{port}")
        created = subprocess.run(
            [self.cli, "--cluster", "create", *(f"{LOOPBACK}:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if created.returncode != 0:
            raise ServiceError(f"redis-cli --cluster create failed: {created.stdout[-500:]} {created.stderr[-500:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every node sees the whole cluster and all slots served
            if all(self._state(p) == "ok" for p in self.ports) and self._replicas_synced():
                return
            time.sleep(0.1)
        raise ServiceError("the cluster did not reach state ok (replicas synced) in 30 s")

    def _replicas_synced(self) -> bool:
        """Every replica's link to its master is up (a replica that never synced cannot take over)."""
        replicas = [p for p in self.ports if p not in self.master_ports()]
        if len(replicas) != self.masters * self.replicas:
            return False
        for port in replicas:
            with contextlib.suppress(redis.RedisError), self.client(port) as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def kill(self, port: int) -> None:
        """SIGKILL one node (no shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[port].pid, signal.SIGKILL)
        self.processes[port].wait(timeout=5)

    def wait_promoted(self, dead: int, timeout: float = 30) -> None:
        """Wait until the live nodes serve every slot again without the dead master."""
        deadline = time.monotonic() + timeout
        live = [p for p in self.ports if p != dead]
        while time.monotonic() < deadline:
            if all(self._state(p) == "ok" for p in live) and dead not in self._slot_masters(live[0]):
                return
            time.sleep(0.05)
        raise ServiceError(f"no replica took over from :{dead} within {timeout} s")

    def _slot_masters(self, port: int) -> set[int]:
        with contextlib.suppress(redis.RedisError), self.client(port) as c:
            return {int(entry[2][1]) for entry in c.execute_command("CLUSTER", "SLOTS")}
        return set()

    def _state(self, port: int) -> str | None:
        with contextlib.suppress(redis.RedisError), self.client(port) as c:
            info = c.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            for line in text.splitlines():
                if line.startswith("cluster_state:"):
                    return line.split(":", 1)[1].strip()
        return None

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=port, socket_timeout=2)

    def master_ports(self) -> list[int]:
        """The ports of the nodes that are masters now."""
        out = []
        for port in self.ports:
            with contextlib.suppress(redis.RedisError), self.client(port) as c:
                if c.info("replication").get("role") == "master":
                    out.append(port)
        return sorted(out)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout=5)
        self.processes.clear()
