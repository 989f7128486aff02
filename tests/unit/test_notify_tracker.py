"""The incident tracker: one notification per incident, dependents folded in, resolves never lost."""

from __future__ import annotations

from hulk_ops.collectors.notify.tracker import IncidentTracker, Policy, Tracked

DEPS = {"cache": [], "api": ["cache"], "worker": ["cache"], "jobs": ["cache"], "bus": []}
UP = {name: "up" for name in DEPS}


def tracker(wait: float = 10.0, update: float = 60.0, state: dict | None = None) -> IncidentTracker:
    return IncidentTracker(DEPS, Policy(group_wait_s=wait, update_interval_s=update), state)


def test_dependency_and_three_dependents_open_one_incident_and_resolve_once() -> None:
    t = tracker()
    sent = []
    sent += t.step({**UP, "api": "down"}, 100.0)  # a dependent is seen first: pending, not sent
    sent += t.step({**UP, "api": "down", "cache": "down"}, 101.0)
    sent += t.step({**UP, "api": "down", "cache": "down", "worker": "down", "jobs": "down"}, 103.0)
    assert sent == []  # still inside group_wait
    failing = {**UP, "api": "down", "cache": "down", "worker": "down", "jobs": "down"}
    sent += t.step(failing, 111.5)
    sent += t.step(failing, 130.0)
    assert [(n.event, n.root, n.dependents) for n in sent] == [("open", "cache", ("api", "jobs", "worker"))]
    assert set(t.state) == {"cache"}  # the dependent's pending incident was folded away
    resolved = t.step({**UP, "api": "down", "worker": "down"}, 140.0)  # root back first, dependents lag
    resolved += t.step(UP, 141.0)
    assert [(n.event, n.root, n.status, n.dependents) for n in resolved] == [
        ("resolve", "cache", "up", ("api", "jobs", "worker"))]
    assert resolved[0].incident_id == sent[0].incident_id
    assert t.state == {}


def test_a_flap_shorter_than_group_wait_sends_nothing() -> None:
    t = tracker()
    assert t.step({**UP, "bus": "down"}, 0.0) == []
    assert t.step(UP, 5.0) == []
    assert t.state == {}


def test_changes_of_an_open_incident_are_updates_rate_limited() -> None:
    t = tracker(wait=0, update=30)
    assert [n.event for n in t.step({**UP, "cache": "down"}, 0.0)] == ["open"]
    assert t.step({**UP, "cache": "down", "api": "down"}, 10.0) == []  # too soon after the open
    update = t.step({**UP, "cache": "down", "api": "down"}, 31.0)
    assert [(n.event, n.dependents) for n in update] == [("update", ("api",))]
    assert t.step({**UP, "cache": "down", "api": "down"}, 90.0) == []  # nothing new


def test_restart_from_persisted_state_neither_reopens_nor_loses_the_resolve() -> None:
    t = tracker(wait=0)
    opened = t.step({**UP, "cache": "down", "api": "down"}, 0.0)
    saved = {k: v.to_dict() for k, v in t.state.items()}
    again = tracker(wait=0, state={k: Tracked.from_dict(v) for k, v in saved.items()})
    assert again.step({**UP, "cache": "down", "api": "down"}, 5.0) == []
    resolved = again.step(UP, 6.0)
    assert [(n.event, n.incident_id) for n in resolved] == [("resolve", opened[0].incident_id)]


def test_silenced_root_sends_nothing_in_the_window_and_resumes_after() -> None:
    t = tracker(wait=0)
    silenced = {"bus"}
    assert t.step({**UP, "bus": "down"}, 0.0, lambda n: n in silenced) == []
    assert t.step({**UP, "bus": "down"}, 50.0, lambda n: n in silenced) == []
    silenced.clear()  # the window ended and bus is still down: the open goes out now
    assert [n.event for n in t.step({**UP, "bus": "down"}, 60.0, lambda n: n in silenced)] == ["open"]


def test_resolve_inside_a_window_waits_for_its_end_and_is_still_sent() -> None:
    t = tracker(wait=0)
    assert [n.event for n in t.step({**UP, "bus": "down"}, 0.0)] == ["open"]
    silenced = {"bus"}
    assert t.step(UP, 10.0, lambda n: n in silenced) == []  # recovered during maintenance: held back
    silenced.clear()
    assert [(n.event, n.root) for n in t.step(UP, 20.0, lambda n: n in silenced)] == [("resolve", "bus")]


def test_pending_incident_that_recovers_inside_the_window_is_never_sent() -> None:
    t = tracker(wait=0)
    silenced = {"bus"}
    assert t.step({**UP, "bus": "down"}, 0.0, lambda n: n in silenced) == []
    assert t.step(UP, 10.0, lambda n: n in silenced) == []
    silenced.clear()
    assert t.step(UP, 20.0) == [] and t.state == {}


def test_an_open_incident_explained_later_by_a_new_root_is_merged_into_it() -> None:
    t = tracker(wait=5)
    t.step({**UP, "api": "down"}, 0.0)
    assert [n.root for n in t.step({**UP, "api": "down"}, 6.0)] == ["api"]  # api opened on its own
    failing = {**UP, "api": "down", "cache": "down"}
    assert t.step(failing, 7.0) == []  # cache pending: api's incident stays as is
    notices = t.step(failing, 13.0)
    assert [(n.event, n.root, n.merged_into) for n in notices] == [("open", "cache", ()), ("update", "api", ("cache",))]
    assert set(t.state) == {"cache"}
    assert [(n.event, n.root) for n in t.step(UP, 20.0)] == [("resolve", "cache")]


def test_dependents_recovering_before_their_root_are_not_news_and_the_resolve_names_them() -> None:
    t = tracker(wait=0, update=0)
    failing = {**UP, "cache": "down", "api": "down", "worker": "down"}
    assert [(n.event, n.dependents) for n in t.step(failing, 0.0)] == [("open", ("api", "worker"))]
    assert t.step({**UP, "cache": "down", "worker": "down"}, 1.0) == []  # api is back first: not news
    assert t.step({**UP, "cache": "down"}, 2.0) == []
    worse = t.step({**UP, "cache": "down", "jobs": "down"}, 3.0)  # a new dependent is
    assert [(n.event, n.dependents) for n in worse] == [("update", ("jobs",))]
    assert [(n.event, n.dependents) for n in t.step(UP, 4.0)] == [("resolve", ("api", "jobs", "worker"))]


def test_notices_carry_the_status_sent_before_and_repeats_resend_what_was_sent() -> None:
    t = tracker(wait=0, update=0)
    (opened,) = t.step({**UP, "cache": "down"}, 0.0)
    assert opened.previous_status is None
    (update,) = t.step({**UP, "cache": "degraded"}, 5.0)
    assert (update.status, update.previous_status) == ("degraded", "down")
    (repeat,) = t.repeats(6.0)
    assert (repeat.event, repeat.status, repeat.at) == ("repeat", "degraded", 6.0)
    assert repeat.incident_id == opened.incident_id
    assert t.repeats(6.0, silenced=lambda name: name == "cache") == []
    (resolve,) = t.step(UP, 9.0)
    assert (resolve.status, resolve.previous_status, resolve.closes) == ("up", "degraded", True)
    assert t.repeats(10.0) == []
