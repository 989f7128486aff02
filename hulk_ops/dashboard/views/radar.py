"""Technology radar: the components we run (radar.yaml) by quadrant and ring, the versions the probes see live,
drift from the pinned version, end-of-life flags, 30-day fitness, migration readiness and the ring history
(rules: hulk_ops/dashboard/readmodel/radar.py and radar_review.py; ring moves: hulk_ops/dashboard/rings.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from hulk_ops.dashboard import charts, context, operator
from hulk_ops.dashboard import components as ui
from hulk_ops.dashboard.readmodel import ReadModel, StoreUnavailable
from hulk_ops.dashboard.readmodel.radar import RINGS, RadarError, RadarFile, load_radar, radar_path, with_rings
from hulk_ops.dashboard.readmodel.radar_review import ComponentReview, review
from hulk_ops.dashboard.rings import RingBook, RingMove
from hulk_ops.dashboard.silence_writer import NotAllowed

DRIFT_LABEL = {"major": "MAJOR drift", "minor": "minor drift", "none": "as pinned", "unknown": "unknown"}
REVIEW_TTL_S = 60.0  # fitness reads 30 days of rollups and event streams: once a minute is fresh enough
ALL = "(all)"


def render() -> None:
    config = context.config()
    st.title("Technology radar")
    path = radar_path(config)
    try:
        radar = load_radar(path)
    except RadarError as exc:
        st.error(f"**The radar file cannot be used.** {exc}", icon=":material/error:")
        return
    refresh = max(config.dashboard.refresh_s, 30.0)

    @st.fragment(run_every=refresh)
    def live() -> None:
        model = context.read_model()
        book = RingBook(config, model.redis)
        try:
            fresh = model.freshness()
            current = with_rings(radar, model._call(book.in_force, radar))
            reviews = cached_review(model, current)
            moves = model._call(book.moves)
        except StoreUnavailable as exc:
            ui.store_error(exc, refresh)
            return
        ui.page_freshness(fresh, f"radar: {path.name}")
        entries = [r.entry for r in reviews]
        drifting = [e for e in entries if e.drift in ("major", "minor")]
        flags = [f for r in reviews for f in r.flags]
        cols = st.columns(4)
        cols[0].metric("Components", len(entries))
        cols[1].metric("Seen live", sum(1 for e in entries if e.live))
        cols[2].metric("Drifting from pinned", len(drifting))
        cols[3].metric("Past or near end of life", len(flags))
        for flag in flags:
            (st.error if flag.past else st.warning)(flag.text(), icon=":material/event_busy:")
        for entry in drifting:
            detail = ", ".join(f"{v} ({d}: {', '.join(entry.live[v][:5])})" for v, d in entry.drifting().items())
            st.warning(f"**{entry.component.name}** pinned {entry.component.pinned}, live {detail}",
                       icon=":material/difference:")
        st.plotly_chart(charts.radar(entries), key="radar_chart")
        window_h = reviews[0].fitness.window_s / 3600 if reviews else 0.0
        st.caption(f"Fitness over the stored history (the last {window_h:,.0f} h: up to 30 days as far as "
                   "`store.retention_h` keeps samples); cost is the mean $/h x 730 h of the spend the cost views "
                   "attribute (RunPod targets, Kubernetes namespaces in `matches`).")
        st.dataframe(table(reviews), hide_index=True, width="stretch")
        component_detail(reviews, moves)

    live()
    ring_form(radar)


@dataclass
class _Reviewed:
    """The newest review of one read model, for the radar's components and rings `key`, made at `at`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    at: float = 0.0
    key: tuple[tuple[str, str], ...] | None = None
    value: list[ComponentReview] = field(default_factory=list)


def cached_review(model: ReadModel, radar: RadarFile) -> list[ComponentReview]:
    holder = model.memoized("radar_review", lambda _: _Reviewed())
    key = tuple((c.name, c.ring) for c in radar.components)
    with holder.lock:
        if holder.key != key or time.time() - holder.at > REVIEW_TTL_S:
            holder.value = model._call(review, model, radar, model.config)
            holder.at, holder.key = time.time(), key
        return holder.value


def table(reviews: list[ComponentReview]) -> pd.DataFrame:
    rows = []
    for r in reviews:
        c, e, f = r.entry.component, r.entry, r.fitness
        live = "; ".join(f"{v or 'no version'} ({len(t)}: {', '.join(t[:3])}{'…' if len(t) > 3 else ''})"
                         for v, t in sorted(e.live.items()))
        eol = "; ".join(f"{x.version}: {'past' if x.past else 'in ' + str(x.days_left) + ' d'}" for x in r.flags)
        rows.append({"component": c.name, "quadrant": c.quadrant, "ring": c.ring, "pinned": c.pinned or "-",
                     "live versions": live or "not seen", "drift": DRIFT_LABEL[e.drift], "end of life": eol or "-",
                     "availability": ui.pct(f.availability_pct, 3), "p95": ui.latency(f.p95_ms),
                     "incidents as root": f.root_incidents, "$ / month": ui.money(f.cost_month_usd),
                     "targets": len(r.readiness.targets), "dependents": len(r.readiness.dependents),
                     "notes": c.notes})
    return pd.DataFrame(rows)


def component_detail(reviews: list[ComponentReview], moves: list[RingMove]) -> None:
    names = [r.entry.component.name for r in reviews]
    wanted = st.query_params.get("component", ALL)
    choice = st.selectbox("Component", [ALL, *names], index=([ALL, *names].index(wanted) if wanted in names else 0),
                          key="radar_component")
    if choice != wanted:
        if choice == ALL:
            st.query_params.pop("component", None)
        else:
            st.query_params["component"] = choice
    if choice != ALL:
        r = next(x for x in reviews if x.entry.component.name == choice)
        c = r.entry.component
        st.subheader(f"{c.name}: migration readiness")
        cols = st.columns(3)
        cols[0].metric("Targets it backs", len(r.readiness.targets))
        cols[1].metric("Targets depending on them", len(r.readiness.dependents),
                       help="through depends_on, directly or further down: the blast radius of a migration")
        cols[2].metric("Guarded actions touching it", len(r.readiness.actions))
        st.markdown("**Targets:** " + (", ".join(f"[{t}](/target?target={t})" for t in r.readiness.targets)
                                       or "none configured"))
        st.markdown("**Dependents:** " + (", ".join(r.readiness.dependents) or "none"))
        st.markdown("**Actions:** " + (", ".join(f"`{a}`" for a in r.readiness.actions) or "none"))
        if c.alternatives:
            st.markdown("**Alternatives**")
            st.dataframe(pd.DataFrame([a.model_dump() for a in c.alternatives]), hide_index=True, width="stretch")
        if c.lifecycle:
            st.markdown("**Lifecycle**")
            st.dataframe(pd.DataFrame([{"version": x.version, "released": x.released, "end of life": x.eol}
                                       for x in c.lifecycle]), hide_index=True, width="stretch")
        moves = [m for m in moves if m.component == choice]
    st.subheader("Ring history")
    if not moves:
        st.caption("No ring moves recorded yet.")
        return
    st.dataframe(pd.DataFrame([{"when (UTC)": ui.utc_time(m.at), "component": m.component, "from": m.previous,
                                "to": m.ring, "who": m.by, "why": m.why} for m in moves]),
                 hide_index=True, width="stretch")


def ring_form(radar: RadarFile) -> None:
    who = operator.current()
    if who is None or who.role != "admin":
        return
    config = context.config()
    with st.expander("Move a component to another ring (admins)"):
        with st.form("ring_move"):
            component = st.selectbox("Component", [c.name for c in radar.components], key="ring_component")
            ring = st.selectbox("New ring", list(RINGS), key="ring_new")
            why = st.text_area("Why", key="ring_why", max_chars=500)
            if st.form_submit_button("Move"):
                book = RingBook(config, context.read_model().redis)
                try:
                    move = book.move(who, radar, component, ring, why)
                except (NotAllowed, ValueError) as exc:
                    st.error(str(exc))
                    return
                except Exception as exc:  # the audit log or the store refused: nothing moved
                    st.error(f"The move was not recorded: {exc}")
                    return
                st.success(f"{move.component} moved from {move.previous} to {move.ring}.")
