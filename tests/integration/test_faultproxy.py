"""The fault proxy itself: each mode does to a real TCP conversation what its name says."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest_plugins = ["tests.fixtures_faults"]


async def ask(address: str, reader_writer=None) -> tuple[bytes, float]:
    host, port = address.split(":")
    reader, writer = reader_writer or await asyncio.open_connection(host, int(port))
    started = time.perf_counter()
    writer.write(b"hello\n")
    await writer.drain()
    data = await reader.readuntil(b"END\n")
    took = time.perf_counter() - started
    if reader_writer is None:
        writer.close()
    return data, took


async def test_pass_through_forwards_unchanged(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    data, took = await ask(proxy.address)
    assert data == response and took < 0.5
    assert proxy.stats.accepted == 1 and proxy.stats.bytes_down == len(response)


async def test_latency_delays_each_round_trip(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    _, baseline = await ask(proxy.address)
    proxy.latency(0.2)
    data, took = await ask(proxy.address)
    assert data == response
    assert 0.2 <= took < 0.2 + baseline + 0.3, (took, baseline)


async def test_stall_holds_until_released(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    proxy.stall()
    host, port = proxy.address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))  # accepted ...
    writer.write(b"hello\n")
    await writer.drain()
    with pytest.raises(TimeoutError):  # ... and never answered
        await asyncio.wait_for(reader.read(1), 0.5)
    proxy.pass_through()
    assert await asyncio.wait_for(reader.readuntil(b"END\n"), 2) == response  # what was held comes through
    writer.close()


async def test_reset_cuts_the_response_with_an_rst(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    proxy.reset(after_bytes=100)
    host, port = proxy.address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"hello\n")
    await writer.drain()
    received = b""
    with pytest.raises(ConnectionResetError):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 2)
            if not chunk:
                break
            received += chunk
    assert received == response[:len(received)] and len(received) <= 100
    assert proxy.stats.resets == 1
    writer.close()


async def test_refuse_closes_the_listener_and_resets_open_connections(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    host, port = proxy.address.split(":")
    open_conn = await asyncio.open_connection(host, int(port))
    assert (await ask(proxy.address, open_conn))[0] == response
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await ask(proxy.address, open_conn)
    proxy.pass_through()  # the listener is back on the same port
    assert (await ask(proxy.address))[0] == response


async def test_throttle_limits_the_rate(chatty_server, fault_proxy) -> None:
    address, response = chatty_server
    proxy = fault_proxy(address)
    proxy.throttle(rate_bps=20_000)
    data, took = await ask(proxy.address)
    assert data == response
    assert took >= len(response) / 20_000 * 0.8, took  # 5,204 B at 20 kB/s: about 0.26 s
