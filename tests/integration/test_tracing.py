"""The collector's own traces, recorded by the SDK's in-memory exporter while it probes real servers."""

from __future__ import annotations

import asyncio
import json

import structlog

from hulk_ops.core.config import load_config
from hulk_ops.entrypoints.service import run_collector
from hulk_ops.observe import logs

pytest_plugins = ["tests.fixtures_observe"]

CANARY = "canary-pw-7731"


def every_text(span) -> list[str]:
    """Every string a span would export: attributes, status, events, links, resource."""
    texts = [span.name, span.status.description or ""]
    texts += [str(v) for v in span.attributes.values()]
    for event in span.events:
        texts += [event.name, *(str(v) for v in event.attributes.values())]
    for link in span.links:
        texts += [str(v) for v in (link.attributes or {}).values()]
    return texts


async def test_cycle_probe_and_store_write_spans(spans, write_config, redis_server, closed_port, capsys) -> None:
    config = load_config(write_config(
        [{"name": "cache", "kind": "redis", "url": redis_server.url, "interval_s": 0.5},
         {"name": "locked", "kind": "redis", "url": f"redis://:{CANARY}@127.0.0.1:{closed_port}/0",
          "interval_s": 0.5}],
        telemetry={"service_name": "hulk-ops-test"},  # no endpoint: the test's provider records instead
        notify={"group_wait_s": 0, "evaluate_s": 0.2,
                "webhooks": [{"name": "w", "url": f"http://127.0.0.1:{closed_port}/{CANARY}",
                              "headers": {"authorization": f"Bearer {CANARY}"}}]},
    ))
    logs.configure("INFO", secrets=config.secrets())
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(run_collector(config, metrics_port=None, stop=stop))
        await asyncio.sleep(1.6)
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        structlog.reset_defaults()
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    cycles = [s for s in finished if s.name == "collector.cycle"]
    probes = [s for s in finished if s.name == "probe redis"]
    assert {s.attributes["hulk.target"] for s in cycles} == {"cache", "locked"}
    assert len(probes) == len(cycles) >= 4
    for probe in probes:  # every probe span is the child of its target's cycle span, in the same trace
        parent = by_id[probe.parent.span_id]
        assert parent.name == "collector.cycle" and parent.context.trace_id == probe.context.trace_id
        assert parent.attributes["hulk.target"] == probe.attributes["hulk.target"]
    cache = next(p for p in probes if p.attributes["hulk.target"] == "cache")
    assert cache.attributes["hulk.kind"] == "redis" and cache.attributes["hulk.status"] == "up"
    assert cache.attributes["hulk.retries"] == 0 and cache.attributes["hulk.breaker"] == "closed"
    assert cache.status.status_code.name == "UNSET"
    locked = [p for p in probes if p.attributes["hulk.target"] == "locked"]
    assert {p.attributes["hulk.status"] for p in locked} == {"down"}
    assert locked[0].status.status_code.name == "ERROR"
    assert locked[0].attributes["hulk.error"] == f"connection refused (127.0.0.1:{closed_port})"
    assert {p.attributes["hulk.breaker"] for p in locked} >= {"closed", "opened"}  # 3 downs open it

    writes = [s for s in finished if s.name == "store.write"]
    assert writes and sum(s.attributes["hulk.results"] for s in writes) == len(cycles)
    cycle_ids = {c.context.span_id for c in cycles}
    linked = {link.context.span_id for w in writes for link in w.links}
    assert linked == cycle_ids  # each batched write points at the cycles whose results it carried
    assert [s for s in finished if s.name == "notify.evaluate"]
    assert [s for s in finished if s.name == "notify.deliver" and s.status.status_code.name == "ERROR"]

    leaked = [(s.name, t) for s in finished for t in every_text(s) if CANARY in t]
    assert leaked == []

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    change = next(line for line in lines if line["event"] == "state_change" and line["target"] == "locked")
    first_locked_cycle = min((c for c in cycles if c.attributes["hulk.target"] == "locked"), key=lambda c: c.start_time)
    assert change["trace_id"] == format(first_locked_cycle.context.trace_id, "032x")
    assert change["span_id"] == format(first_locked_cycle.context.span_id, "016x")
    assert not any(CANARY in json.dumps(line) for line in lines)
