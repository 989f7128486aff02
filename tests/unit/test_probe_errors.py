"""The generic error texts and retries of the probe contract (hulk_ops/probes/base.py) for network failures."""

from __future__ import annotations

from hulk_ops.probes.base import closed_transport, describe_error
from tests.unit.fakes import ScriptedProbe, settings

UVLOOP_CLOSED = "unable to perform operation on <TCPTransport closed=True reading=False 0x7f>; the handler is closed"


def test_uvloop_write_on_a_reset_connection_reads_as_closed_by_peer() -> None:
    exc = RuntimeError(UVLOOP_CLOSED)
    assert closed_transport(exc)
    assert describe_error(exc, "redis://10.0.0.1:6379", 1.0) == "connection closed by peer (10.0.0.1:6379)"
    assert not closed_transport(RuntimeError("something else"))


class ClosingProbe(ScriptedProbe):
    """The first attempt hits a connection the peer reset (as uvloop reports it), the retry a fresh one."""

    async def _measure(self, client: object):
        if self.calls == 0:
            self.calls += 1
            raise RuntimeError(UVLOOP_CLOSED)
        return await super()._measure(client)


async def test_a_closed_transport_is_retried_on_a_fresh_client() -> None:
    probe = ClosingProbe(settings("cache", interval_s=1.0, timeout_s=1.0), retries=1)
    result = await probe.check()
    assert result.status == "up" and probe.last_attempts == 2
    no_retry = ClosingProbe(settings("cache", interval_s=1.0, timeout_s=1.0), retries=0)
    result = await no_retry.check()
    assert result.status == "down" and result.error == "connection closed by peer (x)"


def test_a_reset_wrapped_by_requests_and_urllib3_is_named() -> None:
    import requests
    from urllib3.exceptions import MaxRetryError, ProtocolError

    reset = ConnectionResetError(104, "Connection reset by peer")
    retry = MaxRetryError(None, "/api/v1/status/buildinfo", ProtocolError("Connection aborted.", reset))  # type: ignore[arg-type]
    exc = requests.exceptions.ConnectionError(retry)
    assert describe_error(exc, "http://10.0.0.2:9090", 1.0) == "connection reset by peer (10.0.0.2:9090)"
