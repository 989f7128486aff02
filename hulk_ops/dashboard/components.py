"""Small view helpers shared by pages: status colours, ages, banners."""

from __future__ import annotations

import math
import time

import streamlit as st

from hulk_ops.dashboard.readmodel import Overview, StoreUnavailable
from hulk_ops.dashboard.readmodel.store import Freshness

COLOUR = {"up": "green", "degraded": "orange", "down": "red", "stale": "gray", "unknown": "gray"}
ICON = {"up": "●", "degraded": "▲", "down": "■", "stale": "◌", "unknown": "○"}


def badge(status: str) -> str:
    return f":{COLOUR[status]}[{ICON[status]} **{status.upper()}**]"


def severity(level: str) -> str:
    colour = {"critical": "red", "warning": "orange"}.get(level, "gray")
    return f":{colour}[{'■' if level == 'critical' else '▲'} **{level.upper()}**]"


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


def when(ts: float) -> str:
    """Local wall-clock time of a timestamp: today as HH:MM, other days with the date."""
    if time.strftime("%Y-%m-%d", time.localtime(ts)) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", time.localtime(ts))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def store_error(exc: StoreUnavailable, retry_s: float | None = None) -> None:
    """The banner a page shows instead of its content while the store cannot be read (no traceback)."""
    since = f" since {utc_time(exc.since)} ({age(time.time() - exc.since)})" if exc.since is not None else ""
    retry = f"reads again every {retry_s:g} s by itself" if retry_s else "reads again when reloaded"
    st.error(f"**Store unreachable{since}.** Showing nothing: this page has no data it could vouch for. "
             f"It {retry} and recovers when the store is back. ({exc})",
             icon=":material/error:")


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def utc_time(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def freshness(read_at: float, overview: Overview | None = None, note: str = "") -> None:
    text = f"Read from the store at {clock(read_at)}"
    if overview is not None and overview.last_write_age_s is not None:
        text += f" · newest collector write {age(overview.last_write_age_s)}"
    st.caption(text + (f" · {note}" if note else ""))


def page_freshness(fresh: Freshness, note: str = "") -> None:
    """Every page's first line: when it read the store, how old the newest write is, what is cached."""
    text = f":material/schedule: Read from the store at {clock(fresh.read_at)}"
    text += f" · newest collector write {age(fresh.last_write_age_s)}"
    st.caption(text + (f" · {note}" if note else ""))
    if fresh.collector_stale:
        st.warning(f"**No collector is writing** (last write: {age(fresh.last_write_age_s)}): what this page "
                   "shows is the last data written.", icon=":material/warning:")


def money(usd: float | None, digits: int = 2) -> str:
    if usd is None or (isinstance(usd, float) and math.isnan(usd)):
        return "-"
    return f"${usd:,.{digits}f}"


def size(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        for step, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= step:
                return f"{value / step:.1f} {name}"
        return f"{value:.0f} B"
    if unit in ("cores", "GiB"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f}" + (f" {unit}" if unit not in ("count", "") else "")


def duration(seconds: float | None) -> str:
    """3.2 days / 5.0 h / 12 min; '-' for None."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "now"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def budget(left_pct: float | None) -> str:
    """Error budget left: '37.5 %', or how many times it was spent when overspent ('over ×4.2', 'over ×414')."""
    if left_pct is None or math.isnan(left_pct):
        return "-"
    if left_pct >= 0:
        return f"{left_pct:.1f} %"
    spent = 1 - left_pct / 100
    return f"over ×{spent:.1f}" if spent < 10 else f"over ×{spent:.0f}"


def pct(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f} %"


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
