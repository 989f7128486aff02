"""Overview: open incidents first (root cause, dependents folded under it as a count and a link), then what
needs attention that no open incident explains, then every target (each tile and row links to its detail
page), then the latest state changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard import context, nav
from hulk_ops.dashboard.readmodel import Overview, StoreUnavailable, TargetView
from hulk_ops.dashboard.readmodel.rootcause import failing_since

TILE_LIMIT = 60  # above this many targets, healthy ones go to a table (tiles are for what needs attention)
PROBLEM_TILES = 24  # problems shown as tiles (6 rows), the rest in a table: each tile is ~5 elements for the
# browser to lay out, and a fleet-wide outage (every target stale) must not turn the page into 60 tiles
COLUMNS = 4
INCIDENTS_SHOWN = 8


def render() -> None:
    config = context.config()
    st.title(config.dashboard.title)

    @st.fragment(run_every=config.dashboard.refresh_s)
    def live() -> None:
        try:
            overview = context.read_model().overview()
        except StoreUnavailable as exc:
            ui.store_error(exc, config.dashboard.refresh_s)
            return
        body(overview)

    live()


def body(overview: Overview) -> None:
    ui.freshness(overview.read_at, overview)
    ui.collector_banner(overview)
    incidents(overview)
    counts = overview.counts
    cols = st.columns(6)
    cols[0].metric("Targets", len(overview.targets))
    cols[1].metric("Up", counts["up"])
    cols[2].metric("Degraded", counts["degraded"])
    cols[3].metric("Down", counts["down"])
    cols[4].metric("Stale", counts["stale"])
    cols[5].metric("Never seen", counts["unknown"])
    if overview.problems:
        st.subheader(f"Needs attention ({len(overview.problems)})")
        if overview.folded:
            st.caption(f"{len(overview.folded)} failing dependent(s) are not repeated here: each is folded under "
                       "the open incident that explains it.")
        tiles(overview.problems[:PROBLEM_TILES])  # most severe first; a flood goes to a table
        if len(overview.problems) > PROBLEM_TILES:
            st.caption(f"{len(overview.problems) - PROBLEM_TILES} more:")
            st.dataframe(table(overview.problems[PROBLEM_TILES:]), hide_index=True, width="stretch",
                         column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")})
    elif not overview.folded:
        st.success("All targets are up.", icon=":material/check_circle:")
    healthy = [v for v in overview.targets if v.status == "up"]
    if healthy:
        st.subheader(f"Up ({len(healthy)})")
        if len(overview.targets) <= TILE_LIMIT:
            tiles(healthy)
        else:
            st.dataframe(table(healthy), hide_index=True, width="stretch",
                         column_config={"detail": st.column_config.LinkColumn("detail", display_text="open")})
    events_table(overview)


def incidents(overview: Overview) -> None:
    """Open incidents first: for on-call, the probable root cause is the place to start."""
    if not overview.incidents:
        return
    by_name = {v.name: v for v in overview.targets}
    st.subheader(f"Open incidents ({len(overview.incidents)})")
    model = context.read_model()
    for inc in overview.incidents[:INCIDENTS_SHOWN]:
        root = by_name[inc.root]
        since = failing_since(model, root)
        with st.container(border=True):
            left, right = st.columns([3, 1])
            left.markdown(f"{ui.severity(inc.severity)} &nbsp; probable root cause **{inc.root}** ({root.kind}) · "
                          f"**{len(inc.dependents)}** dependent(s) failing · since {ui.utc_time(since)}")
            if root.result and root.result.error:
                left.caption(f":{ui.COLOUR[root.status]}[{root.result.error[:200]}]")
            if inc.dependents:
                left.caption("dependents: " + ", ".join(inc.dependents[:12]) + (" …" if len(inc.dependents) > 12
                                                                                 else ""))
                nav.link_incident(inc.root, f"{len(inc.dependents)} dependent(s) folded here", container=right)
            else:
                nav.link_incident(inc.root, "open incident", container=right)
            nav.link_target(inc.root, "root cause detail", container=right)
    hidden = overview.incidents[INCIDENTS_SHOWN:]
    if hidden:
        folded = len({d for inc in hidden for d in inc.dependents})
        st.caption(f"… and {len(hidden)} more on the Incidents page"
                   + (f", explaining {folded} more failing dependent(s)." if folded else "."))


def tiles(views: list[TargetView]) -> None:
    for start in range(0, len(views), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, view in zip(cols, views[start:start + COLUMNS], strict=False):
            with col.container(border=True):
                tile(view)


def tile(view: TargetView) -> None:
    result = view.result
    st.markdown(f"{ui.badge(view.status)} &nbsp; **{view.name}**")
    version = result.version if result and result.version else "-"
    st.caption(f"{view.kind} · {version} · {ui.latency(result.latency_ms if result else None)} · "
               f"{ui.age(view.age_s)}")
    if view.breaker != "closed":
        st.caption(f":red[circuit breaker {view.breaker}]")
    if view.silenced_until is not None:
        st.caption(f":violet[:material/notifications_off: silenced until {ui.when(view.silenced_until)}]")
    if result and result.error and view.status != "up":
        st.caption(f":{ui.COLOUR[view.status]}[{result.error[:200]}]")
    nav.link_target(view.name, "details")


def table(views: list[TargetView]) -> pd.DataFrame:
    return pd.DataFrame(
        [{
            "target": v.name,
            "kind": v.kind,
            "status": v.status,
            "latency ms": round(v.result.latency_ms, 1) if v.result and v.result.latency_ms is not None else None,
            "version": v.result.version if v.result else None,
            "age s": round(v.age_s, 1) if v.age_s is not None else None,
            "error": (v.result.error or "")[:200] if v.result and v.status != "up" else "",
            "detail": nav.target_url(v.name),
        } for v in views]
    )


def events_table(overview: Overview) -> None:
    st.subheader("Latest state changes")
    if not overview.events:
        st.caption("No state changes recorded yet.")
        return
    rows = []
    for event in overview.events:
        f = event.fields
        rows.append({
            "time": pd.Timestamp(event.at, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC"),
            "target": f.get("target", ""),
            "kind": f.get("kind", ""),
            "change": f"{f.get('previous') or 'new'} → {f.get('current', '')}" if f.get("source") != "action"
            else f"{f.get('action')} {f.get('object')}: {f.get('outcome')} by {f.get('user')}",
            "error": f.get("error", ""),
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
