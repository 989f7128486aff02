"""Small view helpers shared by pages: status colours, ages, banners."""

from __future__ import annotations

import time

import streamlit as st

from dashboard.readmodel import Overview, StoreUnavailable

COLOUR = {"up": "green", "degraded": "orange", "down": "red", "stale": "gray", "unknown": "gray"}
ICON = {"up": "●", "degraded": "▲", "down": "■", "stale": "◌", "unknown": "○"}


def badge(status: str) -> str:
    return f":{COLOUR[status]}[{ICON[status]} **{status.upper()}**]"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 1:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def clock(ts: float) -> str:
    """Local wall-clock time of a timestamp: today as HH:MM, other days with the date."""
    if time.strftime("%Y-%m-%d", time.localtime(ts)) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", time.localtime(ts))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def store_error(exc: StoreUnavailable) -> None:
    st.error(f"**Store unreachable.** {exc} — nothing on this page is live; it retries by itself.",
             icon=":material/error:")


def freshness(read_at: float, overview: Overview | None = None) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(read_at))
    text = f"Read from the store at {stamp}"
    if overview is not None and overview.last_write_age_s is not None:
        text += f" · newest collector write {age(overview.last_write_age_s)}"
    st.caption(text)


def collector_banner(overview: Overview) -> None:
    if overview.collector_stale:
        when = age(overview.last_write_age_s) if overview.last_write_age_s is not None else "never"
        st.warning(
            f"**No collector is writing** (last write: {when}). Statuses below are the last known ones and "
            "turn *stale* after 3 intervals. Start one with `hulk-ops collect --config FILE`.",
            icon=":material/warning:",
        )
    for collector in overview.collectors:
        if collector.info.get("store_ok") is False:
            st.warning(f"Collector {collector.replica} cannot write to the store; it buffers "
                       f"{collector.info.get('buffered', 0)} results.", icon=":material/warning:")
