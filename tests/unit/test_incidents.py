from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hulk_ops.core.incidents import Incident, explained_by, group, roots_of

GRAPH = {
    "api": ["orders-db", "cache"],
    "worker": ["event-bus", "orders-db"],
    "reports": ["api"],
    "orders-db": [],
    "cache": [],
    "event-bus": [],
}


def test_dependents_fold_under_the_failing_dependency() -> None:
    statuses = {"orders-db": "down", "api": "down", "worker": "down", "reports": "degraded", "cache": "up",
                "event-bus": "up"}
    assert group(statuses, GRAPH) == [Incident("orders-db", "down", ("api", "reports", "worker"))]


def test_independent_failures_are_separate_incidents() -> None:
    statuses = {"orders-db": "up", "cache": "down", "event-bus": "degraded", "api": "down", "worker": "degraded",
                "reports": "up"}
    incidents = group(statuses, GRAPH)
    assert incidents == [Incident("cache", "down", ("api",)), Incident("event-bus", "degraded", ("worker",))]
    assert incidents[0].severity == "critical"


def test_two_failing_dependencies_explain_one_dependent() -> None:
    statuses = {"orders-db": "down", "event-bus": "down", "worker": "down"}
    incidents = group(statuses, GRAPH)
    assert {i.root for i in incidents} == {"orders-db", "event-bus"}
    assert explained_by(incidents) == {"worker": ["event-bus", "orders-db"]}


def test_a_healthy_middle_breaks_the_chain() -> None:
    statuses = {"orders-db": "down", "api": "up", "reports": "down"}
    assert roots_of("reports", statuses, GRAPH) == {"reports"}
    assert {i.root for i in group(statuses, GRAPH)} == {"orders-db", "reports"}


@given(st.dictionaries(st.sampled_from(sorted(GRAPH)), st.sampled_from(["up", "down", "degraded"])))
def test_every_failing_target_is_in_exactly_the_incidents_of_its_roots(statuses: dict[str, str]) -> None:
    incidents = group(statuses, GRAPH)
    covered = [t for i in incidents for t in i.targets]
    failing = {n for n, s in statuses.items() if s in ("down", "degraded")}
    assert set(covered) == failing
    roots = {i.root for i in incidents}
    for incident in incidents:
        assert not [d for d in GRAPH[incident.root] if statuses.get(d) in ("down", "degraded")]
        for dependent in incident.dependents:
            assert dependent not in roots
