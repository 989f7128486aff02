"""A local PostgreSQL that wants a password (the Debian default over TCP) is not reused: `Services` starts a private
server beside it, and says why (naming HULK_OPS_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sandbox import services as services_mod
from sandbox.services import Services, find_binary, free_port, postgres_trusts, stop_process, wait_port

pytestmark = pytest.mark.integration


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A work directory the postgres user can reach (pytest's tmp_path is root-only)."""
    with tempfile.TemporaryDirectory(prefix="hulk-pgauth-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.fixture
def password_postgres(open_tmp: Path) -> Iterator[int]:
    """A private PostgreSQL with scram-sha-256 for everyone on TCP."""
    tmp_path = open_tmp
    initdb = find_binary("initdb")
    if initdb is None:
        pytest.skip("initdb is not installed")
    data = tmp_path / "pw-postgres"
    data.mkdir()
    pwfile = tmp_path / "pw"
    pwfile.write_text("s3cret\n")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data / "data"), "-A", "scram-sha-256", "-U", "postgres",
                    f"--pwfile={pwfile}", "--no-sync"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*as_user, str(Path(initdb).with_name("postgres")), "-D", str(data / "data"),
                             "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                             "-c", f"unix_socket_directories={data}", "-c", "fsync=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, 30, proc, "postgres")
        yield port
    finally:
        stop_process(proc)


def test_password_postgres_is_not_reused(password_postgres: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HULK_OPS_TEST_POSTGRES_URL", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert not postgres_trusts(password_postgres)
    monkeypatch.setitem(services_mod.DEFAULT_PORTS, "postgres", password_postgres)
    with Services(tmp_path / "svc") as svc:  # root-only tmp: the server's data goes where postgres can reach
        endpoint = svc.postgres()
        assert endpoint.started and endpoint.port != password_postgres
        with psycopg.connect(endpoint.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    err = capsys.readouterr().err
    assert f"127.0.0.1:{password_postgres} refuses password-less login" in err
    assert "HULK_OPS_TEST_POSTGRES_URL" in err


def test_env_url_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HULK_OPS_TEST_POSTGRES_URL", "postgresql://app:pw@db.example:5432/app")
    with Services(tmp_path) as svc:
        endpoint = svc.postgres()
    assert endpoint.url == "postgresql://app:pw@db.example:5432/app" and not endpoint.started
