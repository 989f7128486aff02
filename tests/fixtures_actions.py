"""Fixtures of the guarded-actions tests: a private audit schema, a private NATS stream, principals.

Every schema and stream is unique to the test and dropped afterwards (the servers are shared).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nats
import psycopg
import pytest
from psycopg import sql

from hulk_ops.actions.audit import PostgresAuditLog
from hulk_ops.core.action_config import AuditSettings
from sandbox.services import Endpoint


@pytest.fixture
def audit_schema(postgres_server: Endpoint) -> Iterator[AuditSettings]:
    """AuditSettings on a unique schema of the real PostgreSQL; the schema is dropped afterwards."""
    schema = f"t_audit_{uuid.uuid4().hex[:12]}"
    settings = AuditSettings(url=postgres_server.url, schema_name=schema, lock_timeout_s=30)
    yield settings
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def audit_log(audit_schema: AuditSettings) -> PostgresAuditLog:
    return PostgresAuditLog(audit_schema)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even where a loop already runs in this thread
    (Playwright's sync API keeps one open in the main thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


class StreamFixture:
    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name

    async def _with_js(self, fn: Callable[[Any, Any], Any]) -> Any:
        nc = await nats.connect(self.url, connect_timeout=5)
        try:
            return await fn(nc, nc.jetstream(timeout=5))
        finally:
            await nc.close()

    async def create(self, consumers: dict[str, str | None] | None = None) -> None:
        async def go(_nc: Any, js: Any) -> None:
            await js.add_stream(name=self.name, subjects=[f"{self.name}.>"])
            for durable, subject in (consumers or {}).items():
                await js.add_consumer(self.name, durable_name=durable,
                                      filter_subject=f"{self.name}.{subject}" if subject else None)
        await self._with_js(go)

    async def publish(self, count: int, subject: str = "orders", size: int = 64) -> None:
        async def go(_nc: Any, js: Any) -> None:
            for i in range(count):
                await js.publish(f"{self.name}.{subject}", f"{i:08d}".encode().ljust(size, b"."))
        await self._with_js(go)

    async def state(self) -> tuple[int, int, dict[str, int]]:
        """(messages, bytes, consumer name -> pending) as the server reports them now."""
        async def go(_nc: Any, js: Any) -> tuple[int, int, dict[str, int]]:
            info = await js.stream_info(self.name)
            consumers = await js.consumers_info(self.name)
            return info.state.messages, info.state.bytes, {c.name: c.num_pending or 0 for c in consumers}
        return await self._with_js(go)

    def delete(self) -> None:
        async def go(_nc: Any, js: Any) -> None:
            try:
                await js.delete_stream(self.name)
            except nats.js.errors.NotFoundError:
                pass
        run_sync(self._with_js(go))


@pytest.fixture
def stream(nats_server: Endpoint) -> Iterator[StreamFixture]:
    fixture = StreamFixture(nats_server.url, f"T{uuid.uuid4().hex[:10].upper()}")
    yield fixture
    fixture.delete()


@pytest.fixture
def fresh_streamlit_caches() -> Iterator[None]:
    """Streamlit's process-wide caches emptied before and after a page test (pages cache config and clients)."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def run(capsys, monkeypatch):
    """`hulk-ops ARGV...` in this process: (exit code, stdout, stderr), with HULK_OPS_TOKEN set to `token` (unset
    when None)."""
    from hulk_ops.entrypoints.cli import main

    def _run(*argv: str, token: str | None = None) -> tuple[int, str, str]:
        if token is None:
            monkeypatch.delenv("HULK_OPS_TOKEN", raising=False)
        else:
            monkeypatch.setenv("HULK_OPS_TOKEN", token)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def add_user(run, config, name: str, role: str) -> str:
    """A user added with `hulk-ops user add`; returns its token."""
    code, out, err = run("user", "add", name, "--role", role, "--config", str(config))
    assert code == 0, err
    return out.strip()
