"""hulk-ops health: the page to open when the dashboard itself looks wrong.

Collector replicas (their heartbeats in Redis, every 5 s), cycle lag, probes per second, store
write latency, buffered and dropped results, open circuit breakers, the notification outbox and
delivery log, and the silences in force. Everything is read through the read model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from hulk_ops.core.model import JSON
from hulk_ops.core.silences import Silence
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard import context
from hulk_ops.dashboard.readmodel import CollectorView, Delivery, ReadModel, StoreUnavailable

HEARTBEAT_STALE_S = 15.0  # three missed heartbeats (the collector writes one every 5 s)


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    alive: int
    gone: int
    probes_per_s: float
    max_lag_s: float | None
    write_ms_p50: float | None
    buffered: int
    dropped: int
    store_errors: list[str]


def summarise(collectors: list[CollectorView]) -> ReplicaHealth:
    alive = [c for c in collectors if c.heartbeat_age_s < HEARTBEAT_STALE_S and not c.info.get("stopped")]
    lags = [c.info["cycle_lag_s"] for c in alive if c.info.get("cycle_lag_s") is not None]
    writes = [c.info["store_write_ms_p50"] for c in alive if c.info.get("store_write_ms_p50") is not None]
    return ReplicaHealth(
        alive=len(alive), gone=len(collectors) - len(alive),
        probes_per_s=round(sum(c.info.get("probes_per_s") or 0.0 for c in alive), 2),
        max_lag_s=max(lags) if lags else None, write_ms_p50=max(writes) if writes else None,
        buffered=sum(int(c.info.get("buffered") or 0) for c in alive),
        dropped=sum(int(c.info.get("dropped") or 0) for c in alive),
        store_errors=[f"{c.replica}: {c.info['store_error']}" for c in alive if c.info.get("store_error")],
    )


def render() -> None:
    config = context.config()
    st.title("hulk-ops health")
    st.caption("The collectors themselves: are they alive, on time, writing? Open this when the dashboard looks wrong.")

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live() -> None:
        model = context.read_model()
        try:
            body(model)
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)

    live()


def body(model: ReadModel) -> None:
    now = time.time()
    collectors = model.collectors(now)
    ui.freshness(now)
    health = summarise(collectors)
    cols = st.columns(6)
    cols[0].metric("Collectors alive", health.alive, delta=f"-{health.gone} gone" if health.gone else None,
                   delta_color="inverse" if health.gone else "off")
    cols[1].metric("Probes per second", f"{health.probes_per_s:.1f}")
    cols[2].metric("Cycle lag", f"{health.max_lag_s * 1000:.0f} ms" if health.max_lag_s is not None else "-")
    cols[3].metric("Store write p50", f"{health.write_ms_p50:.1f} ms" if health.write_ms_p50 is not None else "-")
    cols[4].metric("Buffered results", health.buffered)
    cols[5].metric("Dropped results", health.dropped)
    if not collectors:
        st.warning("No collector has ever written a heartbeat to this store. Start one with "
                   "`hulk-ops collect --config FILE`.", icon=":material/warning:")
    elif not health.alive:
        st.error("No collector is alive: every heartbeat is older than "
                 f"{HEARTBEAT_STALE_S:.0f} s or says it stopped.", icon=":material/error:")
    for error in health.store_errors:
        st.warning(f"Collector cannot write to the store: {error}", icon=":material/warning:")
    st.subheader("Collector replicas")
    if collectors:
        st.dataframe(replicas_table(collectors), hide_index=True, width="stretch")
    breakers_section(model, now)
    silences_section(model.silences(), now)
    notifications_section(model)


def replicas_table(collectors: list[CollectorView]) -> pd.DataFrame:
    rows = []
    for c in collectors:
        i = c.info
        state = "stopped" if i.get("stopped") else ("alive" if c.heartbeat_age_s < HEARTBEAT_STALE_S else "gone")
        rows.append({
            "replica": c.replica, "state": state, "heartbeat": ui.age(c.heartbeat_age_s), "targets": i.get("targets"),
            "probes/s": i.get("probes_per_s"), "lag ms": _ms(i.get("cycle_lag_s")),
            "max lag ms": _ms(i.get("max_lag_s")), "write p50 ms": i.get("store_write_ms_p50"),
            "write max ms": i.get("store_write_ms_max"), "store": "ok" if i.get("store_ok", True) else "unreachable",
            "buffered": i.get("buffered"), "dropped": i.get("dropped"), "breakers open": i.get("breakers_open"),
            "notifier": "leader" if i.get("notify_leader") else "",
        })
    return pd.DataFrame(rows)


def breakers_section(model: ReadModel, now: float) -> None:
    open_ = {name: b for name, b in model.breakers().items() if b.get("state", "closed") != "closed"}
    st.subheader(f"Circuit breakers open ({len(open_)})")
    if not open_:
        st.caption("Every breaker is closed: all targets are being probed.")
        return
    rows = [{"target": name, "state": b.get("state"), "failures": b.get("failures"), "next trial": _next_trial(b, now)}
            for name, b in sorted(open_.items())]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _next_trial(breaker: dict[str, JSON], now: float) -> str:
    retry_at = breaker.get("retry_at")
    if not retry_at or not isinstance(retry_at, int | float):
        return ui.age(None)
    return f"in {max(0.0, retry_at - now):.0f} s"


def silences_section(silences: list[Silence], now: float) -> None:
    active = [s for s in silences if s.active(now)]
    upcoming = [s for s in silences if s.start > now]
    st.subheader(f"Silences in force ({len(active)})")
    if not active and not upcoming:
        st.caption("No silence is in force or planned. Add one on the Silences page (operators).")
        return
    for silence in active:
        st.markdown(f":violet[:material/notifications_off: **{silence.scope()}**] until {clock(silence.end)} — "
                    f"{silence.reason} ({silence.author}, {silence.source})")
    for silence in upcoming:
        st.caption(f"planned: {silence.scope()} from {clock(silence.start)} to {clock(silence.end)} — {silence.reason}")


def notifications_section(model: ReadModel) -> None:
    st.subheader("Notifications")
    outbox = model.outbox()
    if not outbox:
        st.caption("No webhook is configured (`notify: {webhooks: [...]}`): incidents are shown, not sent.")
        return
    waiting = ", ".join(f"{name}: {count}" for name, count in outbox.items())
    st.caption(f"Waiting in the outbox — {waiting}")
    deliveries = model.deliveries(50)
    if not deliveries:
        st.caption("Nothing sent yet.")
        return
    st.dataframe(deliveries_table(deliveries), hide_index=True, width="stretch")


def deliveries_table(deliveries: list[Delivery]) -> pd.DataFrame:
    return pd.DataFrame([{
        "time": clock(d.at), "webhook": d.webhook, "event": d.event, "outcome": d.outcome, "attempt": d.attempt,
        "code": d.status_code, "summary": d.summary, "error": d.error or "",
    } for d in deliveries])


def clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
