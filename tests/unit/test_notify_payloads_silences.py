"""Notification bodies, silence matching and the telemetry/notify/silences config sections."""

from __future__ import annotations

import dataclasses

import pytest

from hulk_ops.collectors.notify import payloads
from hulk_ops.collectors.notify.tracker import Notice
from hulk_ops.core.config import ConfigError, parse_config
from hulk_ops.core.silences import Silence, from_config, may_silence, silenced_map, silenced_until

OPEN = Notice("open", "db-1700000000000", "db", "down", ("api", "worker"), 1_700_000_000.0, 1_700_000_030.0)
RESOLVE = Notice("resolve", "db-1700000000000", "db", "up", ("api", "worker"), 1_700_000_000.0, 1_700_000_600.0)
MEMBERS = {"db": {"status": "down", "kind": "postgres", "error": "connection refused (10.0.0.5:5432)"},
           "api": {"status": "down", "kind": "http", "error": "HTTP 502"},
           "worker": {"status": "degraded", "kind": "nats", "error": None}}


def test_generic_body() -> None:
    body = payloads.render(OPEN, "generic", MEMBERS, "db-1:open:7", "http://ops:8501")
    assert body["event"] == "open" and body["message_id"] == "db-1:open:7"
    assert body["summary"] == "DOWN: db is down (+2 dependents: api, worker)"
    assert body["incident"] == {"id": "db-1700000000000", "root": "db", "status": "down", "severity": "critical",
                                "dependents": ["api", "worker"], "opened_at": "2023-11-14T22:13:20Z",
                                "resolved_at": None, "merged_into": []}
    assert body["targets"]["db"]["error"] == "connection refused (10.0.0.5:5432)"
    resolved = payloads.render(RESOLVE, "generic", MEMBERS, "m", None)
    assert resolved["summary"] == "RESOLVED: db is up again (+2 dependents: api, worker)"
    assert resolved["incident"]["resolved_at"] == "2023-11-14T22:23:20Z"


def test_slack_body_is_an_incoming_webhook_message() -> None:
    body = payloads.render(OPEN, "slack", MEMBERS, "m", "http://ops:8501")
    assert body["text"] == ":rotating_light: DOWN: db is down (+2 dependents: api, worker)"
    lines = body["blocks"][1]["text"]["text"].splitlines()
    assert lines == ["• *db* (postgres): down — connection refused (10.0.0.5:5432)", "• *api* (http): down — HTTP 502",
                     "• *worker* (nats): degraded"]
    assert body["blocks"][2]["elements"][-1]["text"] == "<http://ops:8501|dashboard>"


def test_alertmanager_body_is_a_list_of_postable_alerts_resolved_with_the_same_labels() -> None:
    (alert,) = payloads.render(OPEN, "alertmanager", MEMBERS, "m", "http://ops:8501", "https://wiki/db", 240.0)
    assert alert["labels"] == {"alertname": "HulkOpsIncident", "target": "db", "root_cause": "db",
                               "kind": "postgres", "severity": "critical", "incident_id": "db-1700000000000"}
    assert alert["startsAt"] == "2023-11-14T22:13:20Z" and alert["endsAt"] == "2023-11-14T22:17:50Z"  # at + hold
    assert alert["annotations"]["runbook_url"] == "https://wiki/db" and alert["generatorURL"] == "http://ops:8501"
    assert alert["annotations"]["description"] == "db (postgres) is down: connection refused (10.0.0.5:5432)"
    resolve = dataclasses.replace(RESOLVE, previous_status="down")
    (resolved,) = payloads.render(resolve, "alertmanager", MEMBERS, "m", None)
    assert resolved["labels"] == alert["labels"] and resolved["endsAt"] == "2023-11-14T22:23:20Z"
    assert "runbook_url" not in resolved["annotations"]


def test_alertmanager_severity_change_ends_the_alert_of_the_old_severity() -> None:
    update = Notice("update", "db-1", "db", "degraded", (), 1_700_000_000.0, 1_700_000_100.0, previous_status="down")
    firing, ended = payloads.render(update, "alertmanager", MEMBERS, "m", None)
    assert (firing["labels"]["severity"], ended["labels"]["severity"]) == ("warning", "critical")
    assert firing["endsAt"] > ended["endsAt"] == "2023-11-14T22:15:00Z"
    merged = Notice("update", "db-1", "db", "down", (), 1_700_000_000.0, 1_700_000_100.0, ("net",), "down")
    (closed,) = payloads.render(merged, "alertmanager", MEMBERS, "m", None)
    assert closed["endsAt"] == "2023-11-14T22:15:00Z" and closed["annotations"]["merged_into"] == "net"


CONFIG = """
targets:
  - {name: db, kind: postgres, url: "postgresql://h/x", labels: {env: staging, team: payments}}
  - {name: cache, kind: redis, url: "redis://h", labels: {env: production}}
"""


def test_silences_by_name_and_selector_and_chained_windows() -> None:
    config = parse_config(CONFIG)
    db, cache = config.targets
    by_label = Silence("a", 100.0, 200.0, "ana", "r", selector={"env": "staging"})
    chained = Silence("b", 190.0, 300.0, "bo", "r", targets=("db",))
    other = Silence("c", 100.0, 400.0, "bo", "r", selector={"env": "staging", "team": "search"})
    assert silenced_until(db, [by_label, chained, other], 150.0) == 300.0  # windows that touch are followed
    assert silenced_until(db, [by_label], 200.0) is None  # the end is exclusive
    assert silenced_until(db, [by_label], 99.0) is None
    assert silenced_until(cache, [by_label, chained, other], 150.0) is None
    assert silenced_map(config.targets, [by_label], 150.0) == {"db": 200.0}
    assert Silence.from_dict(chained.to_dict()) == chained
    assert [may_silence(r) for r in ("viewer", None, "operator", "admin")] == [False, False, True, True]


def test_config_sections_validate_and_secrets_are_collected() -> None:
    config = parse_config(CONFIG + """
telemetry: {otlp_endpoint: "http://127.0.0.1:4318/v1/traces", headers: {authorization: "Bearer otlp-tok"}}
notify:
  group_wait_s: 5
  webhooks:
    - {name: chat, url: "https://hooks.example/services/T0/B0/slack-path-tok", format: slack}
    - {name: am, url: "http://127.0.0.1:9093/hook", format: alertmanager, headers: {X-Key: am-key-tok}}
silences:
  - {targets: [db], start: "2025-06-01T22:00:00Z", end: "2025-06-01T23:00:00Z", author: ana, reason: upgrade}
""")
    assert config.telemetry.enabled and config.notify.group_wait_s == 5
    secrets = config.secrets()
    assert {"Bearer otlp-tok", "https://hooks.example/services/T0/B0/slack-path-tok", "am-key-tok"} <= set(secrets)
    assert "slack-path-tok" not in repr(config.notify)  # SecretStr in reprs and logs
    (silence,) = from_config(config)
    assert (silence.id, silence.targets, silence.end - silence.start) == ("config-0", ("db",), 3600.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("notify: {webhooks: [{name: a, url: 'ftp://x'}]}", "must start with http"),
    ("notify: {webhooks: [{name: a, url: 'http://x', format: teams}]}", "format"),
    ("notify: {webhooks: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]}", "duplicate name(s): a"),
    ("silences: [{targets: [nope], start: 2025-01-01T00:00:00Z, end: 2025-01-02T00:00:00Z, author: a, reason: r}]",
     "silences[0]: targets: unknown target(s) 'nope'"),
    ("silences: [{start: 2025-01-01T00:00:00Z, end: 2025-01-02T00:00:00Z, author: a, reason: r}]",
     "needs targets"),
    ("silences: [{targets: [db], start: 2025-01-02T00:00:00Z, end: 2025-01-01T00:00:00Z, author: a, reason: r}]",
     "must be after start"),
    ("silences: [{targets: [db], start: 2025-01-01T00:00:00, end: 2025-01-02T00:00:00Z, author: a, reason: r}]",
     "timezone"),
    ("telemetry: {otlp_endpoint: x, sample_ratio: 2}", "sample_ratio"),
])
def test_bad_sections_name_the_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIG + text, "bad.yaml")
    assert "bad.yaml" in str(err.value) and expected in str(err.value)


ROUTES = """
notify:
  webhooks:
    - {name: all, url: "http://127.0.0.1:9/all"}
    - {name: payments, url: "http://127.0.0.1:9/p", match: {labels: {team: payments}}}
    - {name: pages, url: "http://127.0.0.1:9/pages", match: {severities: [critical], kinds: [postgres]}}
targets:
  - {name: db, kind: postgres, url: "postgresql://h/x", labels: {team: payments}}
  - {name: cache, kind: redis, url: "redis://h", labels: {team: core}}
"""


def test_webhooks_get_the_incidents_their_match_takes_and_every_later_notice_of_them() -> None:
    from hulk_ops.collectors.notify.service import Notifier
    from hulk_ops.collectors.notify.tracker import IncidentTracker, Policy
    from hulk_ops.collectors.telemetry import CollectorMetrics

    config = parse_config(ROUTES)
    notifier = Notifier(config, CollectorMetrics(), "r1", store=object())  # type: ignore[arg-type]
    notifier.tracker = IncidentTracker({"db": [], "cache": []}, Policy(0, 0))
    names = lambda ws: [w.name for w in ws]  # noqa: E731
    (opened,) = notifier.tracker.step({"db": "down", "cache": "up"}, 0.0)
    assert names(notifier.routed(opened)) == ["all", "payments", "pages"]
    (update,) = notifier.tracker.step({"db": "degraded", "cache": "up"}, 1.0)
    assert names(notifier.routed(update)) == ["all", "payments", "pages"]  # pages was told: it hears the rest
    (resolve,) = notifier.tracker.step({"db": "up", "cache": "up"}, 2.0)
    assert names(notifier.routed(resolve)) == ["all", "payments", "pages"]
    (degraded,) = notifier.tracker.step({"db": "degraded", "cache": "up"}, 3.0)
    assert names(notifier.routed(degraded)) == ["all", "payments"]  # a warning: not for pages
    (cache,) = notifier.tracker.step({"db": "degraded", "cache": "down"}, 4.0)
    assert names(notifier.routed(cache)) == ["all"]
    with pytest.raises(ConfigError, match="severities"):
        parse_config(ROUTES.replace("[critical]", "[page]"))


def test_alertmanager_repeats_come_every_resend_s_and_not_behind_a_backlog() -> None:
    from hulk_ops.collectors.notify.service import Notifier
    from hulk_ops.collectors.notify.tracker import IncidentTracker, Policy
    from hulk_ops.collectors.telemetry import CollectorMetrics

    config = parse_config("""
notify:
  webhooks:
    - {name: am, url: "http://127.0.0.1:9/api/v2/alerts", format: alertmanager, resend_s: 10}
    - {name: chat, url: "http://127.0.0.1:9/chat"}
targets:
  - {name: db, kind: postgres, url: "postgresql://h/x"}
""")
    notifier = Notifier(config, CollectorMetrics(), "r1", store=object())  # type: ignore[arg-type]
    notifier.tracker = IncidentTracker({"db": []}, Policy(0, 0))
    never = lambda _name: False  # noqa: E731
    opened = notifier.tracker.step({"db": "down"}, 0.0)
    assert notifier._repeats(opened, 0.0, never) == []
    assert notifier._repeats([], 9.0, never) == []
    ((webhook, repeat),) = notifier._repeats([], 10.5, never)  # only the Alertmanager webhook
    assert (webhook.name, repeat.event, repeat.status) == ("am", "repeat", "down")
    notifier.outbox = {"am": 2}
    assert notifier._repeats([], 30.0, never) == []  # its queue is not empty: nothing more to queue
    notifier.outbox = {"am": 0}
    assert len(notifier._repeats([], 30.0, never)) == 1
