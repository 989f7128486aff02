"""Real servers for tests and the demo: reuse a running one, else start a private one on loopback.

Redis, PostgreSQL, NATS JetStream and MariaDB are reused when something already answers on their usual
port (127.0.0.1:6379, :5432, :4222, :3306); otherwise a private instance is started from the Debian
packages' binaries (installed with apt-get when missing and we may: root or passwordless sudo)
in a work directory, and stopped again by `stop()`. Prometheus is always private (its scrape
config is the caller's). Never Docker.

    python -m sandbox.services up [--workdir DIR]   # prints the URLs; Ctrl-C stops what it started
    python -m sandbox.services install              # apt-get the binaries a fresh machine lacks
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"redis": 6379, "postgres": 5432, "nats": 4222, "prometheus": 9090, "mariadb": 3306}
# binary -> Debian package providing it
PACKAGES = {
    "redis-server": "redis-server",
    "nats-server": "nats-server",
    "initdb": "postgresql",
    "mariadb-install-db": "mariadb-server",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "chromium": "chromium",
    "nginx": "nginx-light",  # tests/integration/test_origin_proxy.py runs deploy/proxy/nginx.conf
}


class ServiceError(RuntimeError):
    pass


@dataclass
class Endpoint:
    name: str
    url: str
    port: int
    started: bool  # True: we started it (and stop it); False: reused
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: Path | None = None


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{what} exited with code {process.returncode} before listening on {port}")
        time.sleep(0.05)
    raise ServiceError(f"{what} did not listen on {LOOPBACK}:{port} within {timeout:.0f} s")


def postgres_trusts(port: int, host: str = LOOPBACK) -> bool:
    """Whether the PostgreSQL at host:port lets `postgres` in without a password (what reusing it needs)."""
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres", connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def mariadb_trusts(port: int, host: str = LOOPBACK) -> bool:
    """Whether the MariaDB/MySQL at host:port lets `root` in without a password (what reusing it needs)."""
    import asyncio

    import asyncmy

    async def attempt() -> None:
        conn = await asyncmy.connect(host=host, port=port, user="root", password="", connect_timeout=5)
        conn.close()

    def run() -> None:  # on a thread of its own: callers may be inside a running event loop
        asyncio.run(attempt())

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(run).result(timeout=15)
        except (asyncmy.errors.MySQLError, OSError, TimeoutError):
            return False
    return True


def _reachable_by_others(path: Path) -> bool:
    """Whether every directory from / down to path lets other users through (x for others)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def find_binary(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if found:
        return found
    if name in ("initdb", "pg_ctl", "postgres"):
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
        return candidates[0] if candidates else None
    return None


def install(binaries: list[str]) -> None:
    """apt-get the Debian packages providing the missing binaries (root or passwordless sudo only)."""
    missing = sorted({PACKAGES[b] for b in binaries if b in PACKAGES and not find_binary(b)})
    if not missing:
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            raise ServiceError(f"missing {', '.join(missing)}: run `sudo apt-get install -y {' '.join(missing)}`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing Debian packages: {' '.join(missing)}", file=sys.stderr)
    cmd = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(cmd, env=env).returncode != 0:
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, check=False)
        if subprocess.run(cmd, env=env).returncode != 0:
            raise ServiceError(f"apt-get install {' '.join(missing)} failed")


class Services:
    """Start (or reuse) the servers; `stop()` stops only what was started here."""

    def __init__(self, workdir: str | os.PathLike[str], reuse: bool = True) -> None:
        self.workdir = Path(workdir).resolve()
        self.reuse = reuse
        self.endpoints: dict[str, Endpoint] = {}
        self._scratch: list[Path] = []  # directories outside workdir, removed by stop()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _port(self, name: str) -> tuple[int, bool]:
        """(port, reuse?) for a service: its usual port if something answers there."""
        usual = DEFAULT_PORTS[name]
        if self.reuse and port_open(usual):
            return usual, True
        return (usual if not port_open(usual) else free_port()), False

    def redis(self) -> Endpoint:
        if env_url := os.environ.get("HULK_OPS_TEST_REDIS_URL"):
            return self._remember(Endpoint("redis", env_url, 0, False))
        port, reuse = self._port("redis")
        if reuse:
            return self._remember(Endpoint("redis", f"redis://{LOOPBACK}:{port}", port, False))
        binary = self._binary("redis-server")
        data = self._dir("redis")
        proc = self._spawn("redis", [binary, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                                     "--appendonly", "no", "--dir", str(data), "--daemonize", "no"], data)
        wait_port(port, 15, proc, "redis-server")
        return self._remember(Endpoint("redis", f"redis://{LOOPBACK}:{port}", port, True, proc, data))

    def nats(self) -> Endpoint:
        if env_url := os.environ.get("HULK_OPS_TEST_NATS_URL"):
            return self._remember(Endpoint("nats", env_url, 0, False))
        port, reuse = self._port("nats")
        if reuse:
            return self._remember(Endpoint("nats", f"nats://{LOOPBACK}:{port}", port, False))
        binary = self._binary("nats-server")
        data = self._dir("nats")
        proc = self._spawn("nats", [binary, "-a", LOOPBACK, "-p", str(port), "-js", "-sd", str(data)], data)
        wait_port(port, 15, proc, "nats-server")
        return self._remember(Endpoint("nats", f"nats://{LOOPBACK}:{port}", port, True, proc, data))

    def postgres(self) -> Endpoint:
        if env_url := os.environ.get("HULK_OPS_TEST_POSTGRES_URL"):
            return self._remember(Endpoint("postgres", env_url, 0, False))
        port, reuse = self._port("postgres")
        if reuse and not postgres_trusts(port):
            # a local server that wants a password (the Debian default for TCP): start our own beside it
            print(f"PostgreSQL on {LOOPBACK}:{port} refuses password-less login as postgres: starting a private "
                  "server (or set HULK_OPS_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@HOST:PORT/DB)",
                  file=sys.stderr)
            port, reuse = free_port(), False
        if reuse:
            return self._remember(Endpoint("postgres", f"postgresql://postgres@{LOOPBACK}:{port}/postgres",
                                           port, False))
        try:
            initdb = self._binary("initdb")
        except ServiceError as exc:
            raise ServiceError(f"{exc}; or point the tests and the demo at a PostgreSQL of yours with "
                               "HULK_OPS_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@HOST:PORT/DB") from exc
        postgres_bin = str(Path(initdb).with_name("postgres"))
        data = self._dir("postgres")
        as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the package's user
            if not _reachable_by_others(data):  # e.g. under pytest's root-only tmp: a directory it can reach
                data = Path(tempfile.mkdtemp(prefix="hulk-postgres-"))
                data.chmod(0o755)
                self._scratch.append(data)
            shutil.chown(data, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        pgdata = data / "data"
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run([*as_user, initdb, "-D", str(pgdata), "-A", "trust", "-U", "postgres", "--no-sync"],
                           check=True, capture_output=True)
        proc = self._spawn("postgres", [*as_user, postgres_bin, "-D", str(pgdata), "-p", str(port),
                                        "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={data}",
                                        "-c", "fsync=off"], data)
        wait_port(port, 30, proc, "postgres")
        return self._remember(Endpoint("postgres", f"postgresql://postgres@{LOOPBACK}:{port}/postgres",
                                       port, True, proc, data))

    def mariadb(self) -> Endpoint:
        """The machine's MariaDB/MySQL when root may log in without a password, else a private mariadbd."""
        if "mariadb" in self.endpoints:
            return self.endpoints["mariadb"]
        if env_url := os.environ.get("HULK_OPS_TEST_MYSQL_URL"):
            return self._remember(Endpoint("mariadb", env_url, 0, False))
        port, reuse = self._port("mariadb")
        if reuse and not mariadb_trusts(port):
            print(f"MariaDB on {LOOPBACK}:{port} refuses password-less login as root: starting a private server "
                  "(or set HULK_OPS_TEST_MYSQL_URL=mysql://USER:PASSWORD@HOST:PORT)", file=sys.stderr)
            port, reuse = free_port(), False
        if reuse:
            return self._remember(Endpoint("mariadb", f"mysql://root@{LOOPBACK}:{port}", port, False))
        install_db = self._binary("mariadb-install-db")
        data = self._dir("mariadb")
        as_user = ["--user=mysql"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:  # mariadbd refuses to run as root: as the package's user, in a directory it reaches
            if not _reachable_by_others(data):
                data = Path(tempfile.mkdtemp(prefix="hulk-mariadb-"))
                data.chmod(0o755)
                self._scratch.append(data)
            shutil.chown(data, "mysql", "mysql")
        datadir = data / "data"
        if not (datadir / "mysql").exists():
            subprocess.run([install_db, f"--datadir={datadir}", *as_user, "--auth-root-authentication-method=normal",
                            "--skip-test-db"], check=True, capture_output=True)
        server = find_binary("mariadbd") or find_binary("mysqld") or "mariadbd"
        proc = self._spawn("mariadb", [server, "--no-defaults", f"--datadir={datadir}", *as_user, f"--port={port}",
                                       f"--bind-address={LOOPBACK}", f"--socket={data / 'mariadb.sock'}",
                                       f"--pid-file={data / 'mariadb.pid'}",
                                       "--innodb-flush-log-at-trx-commit=0"], data)
        wait_port(port, 60, proc, "mariadbd")
        return self._remember(Endpoint("mariadb", f"mysql://root@{LOOPBACK}:{port}", port, True, proc, data))

    def prometheus(self, config_yaml: str, port: int | None = None) -> Endpoint:
        """A private Prometheus with the given scrape config (always started here)."""
        binary = self._binary("prometheus")
        port = port or free_port()
        data = self._dir(f"prometheus-{port}")
        config = data / "prometheus.yml"
        config.write_text(config_yaml, encoding="utf-8")
        proc = self._spawn(f"prometheus-{port}", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address={LOOPBACK}:{port}", "--web.enable-lifecycle", "--log.level=warn",
        ], data)
        wait_port(port, 30, proc, "prometheus")
        return self._remember(Endpoint(f"prometheus-{port}", f"http://{LOOPBACK}:{port}", port, True, proc, data))

    def alertmanager(self, config_yaml: str, port: int | None = None) -> Endpoint:
        """A private Alertmanager (Debian's prometheus-alertmanager, no cluster listener), always started here."""
        binary = self._binary("prometheus-alertmanager")
        port = port or free_port()
        data = self._dir(f"alertmanager-{port}")
        config = data / "alertmanager.yml"
        config.write_text(config_yaml, encoding="utf-8")
        proc = self._spawn(f"alertmanager-{port}", [
            binary, f"--config.file={config}", f"--storage.path={data / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}", "--cluster.listen-address=", "--log.level=warn",
        ], data)
        wait_port(port, 30, proc, "alertmanager")
        return self._remember(Endpoint(f"alertmanager-{port}", f"http://{LOOPBACK}:{port}", port, True, proc, data))

    def core(self) -> dict[str, Endpoint]:
        return {"redis": self.redis(), "postgres": self.postgres(), "nats": self.nats()}

    def stop(self) -> None:
        for endpoint in reversed(list(self.endpoints.values())):
            stop_process(endpoint.process)
        self.endpoints.clear()
        for path in self._scratch:
            shutil.rmtree(path, ignore_errors=True)
        self._scratch.clear()

    # -- helpers ------------------------------------------------------------------------------
    def _binary(self, name: str) -> str:
        found = find_binary(name)
        if not found:
            install([name])
            found = find_binary(name)
        if not found:
            raise ServiceError(f"{name} not found (Debian package {PACKAGES.get(name, name)})")
        return found

    def _dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, name: str, argv: list[str], data: Path) -> subprocess.Popen[bytes]:
        log = open(data / f"{name}.log", "ab")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def _remember(self, endpoint: Endpoint) -> Endpoint:
        self.endpoints[endpoint.name] = endpoint
        return endpoint


class PrivateRedis:
    """A redis-server of our own on a free loopback port (never the shared one), data in `workdir`, that a test
    can stop, start again on the same port, and freeze. `durable`: an append-only file (fsync'd every second
    and at shutdown), so a stop and a start keep what was written before the stop; otherwise nothing is kept."""

    def __init__(self, workdir: str | os.PathLike[str], durable: bool = False) -> None:
        binary = find_binary("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (make servers)")
        self.binary = binary
        self.workdir = Path(workdir)
        self.durable = durable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start it and wait until it answers PING (after a restart it first loads its append-only file)."""
        import redis

        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.durable else ["--appendonly", "no"]
        log = open(self.workdir / "redis.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.workdir), "--save", "",
             *persistence, "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()  # the child holds its own descriptor
        self.frozen = False
        wait_port(self.port, timeout, self.process, "private redis-server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.BusyLoadingError, redis.ConnectionError), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.05)
        raise ServiceError(f"private redis-server on {LOOPBACK}:{self.port} did not answer PING")

    def stop(self) -> None:
        """SIGTERM (thawed first if frozen): Redis fsyncs its append-only file and exits; returns once the port
        refuses connections."""
        if self.frozen:
            self.thaw()
        stop_process(self.process)
        self.process = None
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, the server never answers (a hung store)."""
        assert self.process is not None and self.process.poll() is None, "not running"
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGCONT)
        self.frozen = False

    def client(self) -> redis.Redis:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.services")
    parser.add_argument("command", choices=["up", "install"])
    parser.add_argument("--workdir", default=".services")
    parser.add_argument("--with", dest="extra", action="append", default=[],
                        help="extra binaries to install (install only), e.g. chromium")
    args = parser.parse_args(argv)
    if args.command == "install":
        needed = [b for b in ("redis-server", "nats-server", "initdb", "mariadb-install-db", "prometheus", "promtool",
                              *args.extra)]
        wanted = [b for b in needed if not (b in ("redis-server", "nats-server", "initdb", "mariadb-install-db")
                                            and port_open(DEFAULT_PORTS[_service_of(b)])
                                            and (b != "initdb" or postgres_trusts(DEFAULT_PORTS["postgres"]))
                                            and (b != "mariadb-install-db"
                                                 or mariadb_trusts(DEFAULT_PORTS["mariadb"])))]
        install(wanted)
        return 0
    with Services(args.workdir) as services:
        for endpoint in services.core().values():
            print(f"{endpoint.name:9} {endpoint.url}  ({'started' if endpoint.started else 'reused'})", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


def _service_of(binary: str) -> str:
    return {"redis-server": "redis", "nats-server": "nats", "initdb": "postgres",
            "mariadb-install-db": "mariadb"}[binary]


if __name__ == "__main__":
    sys.exit(main())
