"""Helpers for the page tests: what a rendered page shows, and writes other writers make to the store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import redis
from streamlit.testing.v1 import AppTest

from hulk_ops.collectors.codec import Keys
from hulk_ops.core.config import Config
from hulk_ops.entrypoints.bootstrap import build_store


def texts(at: AppTest) -> str:
    """Everything a reader sees as text: titles, markdown, captions, banners, metrics, expander labels."""
    parts = [t.value for t in at.title] + [h.value for h in at.subheader] + [m.value for m in at.markdown]
    parts += [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [i.value for i in at.info]
    parts += [f"{m.label}: {m.value}" for m in at.metric] + [x.label for x in at.expander]
    return "\n".join(parts)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def plotly_traces(at: AppTest) -> list[dict[str, Any]]:
    """Every trace of every Plotly chart on the page, as the browser receives it."""
    traces = []
    for element in at.get("plotly_chart"):
        traces.extend(json.loads(element.proto.spec)["data"])
    return traces


def trace_points(trace: dict[str, Any]) -> int:
    for axis in ("x", "theta"):
        values = trace.get(axis)
        if isinstance(values, dict) and "bdata" in values:  # plotly's typed-array encoding
            import base64

            import numpy as np

            return int(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).size)
        if values is not None:
            return len(values)
    return 0


def xadd(config: Config, fields: dict[str, str], ts: float) -> None:
    """An event written the way other writers (the actions' audit copy) do: XADD now, `at` = when it happened."""
    from datetime import UTC, datetime

    from hulk_ops.core.model import iso

    keys = Keys(config.store.prefix)
    client = redis.Redis.from_url(config.store.redis_url)
    try:
        fields = {**fields, "at": iso(datetime.fromtimestamp(ts, UTC))}
        client.xadd(keys.events, fields)
        if fields.get("target"):
            client.xadd(keys.target_events(fields["target"]), fields)
    finally:
        client.close()


def set_last_write(config: Config, ts: float) -> None:
    client = redis.Redis.from_url(config.store.redis_url)
    try:
        client.set(Keys(config.store.prefix).last_write, repr(ts))
    finally:
        client.close()


def write_breakers(config: Config, states: dict[str, dict[str, Any]]) -> None:
    async def go() -> None:
        store = build_store(config)
        try:
            await store.write_breakers(states)
        finally:
            await store.close()

    asyncio.run(go())


def in_order(at: AppTest) -> str:
    """The page's text elements in document order (texts() groups them by element type)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for key in sorted(children):
                walk(children[key])
            return
        value = getattr(node, "value", None)
        if isinstance(value, str):
            out.append(value)

    walk(at.main)
    return "\n".join(out)


def touch_latest(config: Config, now: float) -> None:
    """Stamp every newest result as just observed (what a running collector keeps doing)."""
    import orjson

    from hulk_ops.core.model import iso

    keys = Keys(config.store.prefix)
    client = redis.Redis.from_url(config.store.redis_url)
    try:
        raw = client.hgetall(keys.latest)
        stamped = {}
        for i, (name, blob) in enumerate(raw.items()):
            data = orjson.loads(blob)
            data["observed_at"] = iso(datetime.fromtimestamp(now - (i % 10), UTC))
            stamped[name] = orjson.dumps(data)
        if stamped:
            client.hset(keys.latest, mapping=stamped)
        client.set(keys.last_write, repr(now))
    finally:
        client.close()
