"""Every shipped alert links a runbook section that exists in docs/runbooks.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_alert_has_a_runbook_anchor_that_exists() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/hulk-ops-rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", (ROOT / "docs/runbooks.md").read_text(), re.M)}
    assert alerts
    for alert in alerts:
        url = alert["annotations"].get("runbook_url", "")
        assert url == f"docs/runbooks.md#{alert['alert'].lower()}", alert["alert"]
        assert alert["alert"].lower() in anchors, alert["alert"]
