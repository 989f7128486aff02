"""Cost page on a seeded store: $/h is the sum of the running pods' costPerHr, Kubernetes namespaces are
priced with actions.prices, spend integrates the stored rates, runway is budget left / daily burn."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime

import pandas as pd
import pytest

from hulk_ops.core.config import load_config
from tests.seed import result, seed
from tests.views_support import metrics, set_last_write, texts

pytest_plugins = ["tests.fixtures_views"]

PODS = [
    {"id": "p1", "name": "train-a", "status": "RUNNING", "gpu_type": "A100", "gpu_count": 1, "cost_per_hr": 1.89,
     "uptime_s": 7200, "gpu_util_pct": 1.5, "idle": True},
    {"id": "p2", "name": "train-b", "status": "RUNNING", "gpu_type": "H100", "gpu_count": 2, "cost_per_hr": 5.98,
     "uptime_s": 3600, "gpu_util_pct": 88.0, "idle": False},
    {"id": "p3", "name": "old", "status": "EXITED", "gpu_type": "A100", "gpu_count": 1, "cost_per_hr": 1.89,
     "uptime_s": 0, "gpu_util_pct": None, "idle": None},
]
ENDPOINTS = [{"id": "ep-embed", "up": True, "error": None, "workers": {"running": 2, "idle": 1},
              "jobs": {"inQueue": 0, "inProgress": 0}},
             {"id": "ep-chat", "up": True, "error": None, "workers": {"running": 1, "idle": 0},
              "jobs": {"inQueue": 4, "inProgress": 1}}]
PRICES = {"cpu_hour": 0.031, "gib_hour": 0.004, "gpu_hour": 1.89}
NS = {"ns.shop.cpu_requests": 4.0, "ns.shop.memory_requests_gib": 8.0, "ns.shop.gpu_requests": 1.0,
      "ns.web.cpu_requests": 2.5, "ns.web.memory_requests_gib": 4.0, "ns.web.gpu_requests": 0.0,
      "cpu_requests": 6.5, "memory_requests_gib": 12.0, "gpu_requests": 1.0}  # cluster totals = the namespaces


def spend(points: list[tuple[float, float]], gap: float, until: float, since: float) -> float:
    """USD of a $/h series, each value held until the next sample, at most `gap` seconds."""
    points = [p for p in points if since <= p[0] <= until]
    total = 0.0
    for i, (ts, rate) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else until
        total += rate * min(nxt - ts, gap) / 3600
    return total


@pytest.fixture
def cost_store(write_config, store_redis_url, store_prefix):
    now = time.time()
    path = write_config([
        {"name": "gpu-cloud", "kind": "runpod", "api_key": "k", "interval_s": 60, "endpoints": ["ep-embed",
                                                                                                "ep-chat"]},
        {"name": "k8s-main", "kind": "kubernetes", "url": "https://k:6443", "token": "t", "interval_s": 60},
    ], cost={"monthly_budget_usd": 2000, "worker_hour_usd": 0.5}, actions={"prices": PRICES},
        # retention reaches back to the 1st: the month to date is all stored, not estimated
        store={"redis_url": store_redis_url, "prefix": store_prefix, "retention_h": 24 * 40})
    config = load_config(path)
    running = sum(p["cost_per_hr"] for p in PODS if p["status"] == "RUNNING")
    history = [(now - 3600 + 60 * k, running if k >= 30 else 1.89) for k in range(60)]
    results = [result("gpu-cloud", "runpod", "up", ts, 120.0, None, metrics={"cost_per_hr_total": rate},
                      details={"pods": PODS, "endpoints": ENDPOINTS}) for ts, rate in history]
    results.append(result("k8s-main", "kubernetes", "up", now - 5, 20.0, "v1.33.4", metrics=NS))
    seed(config, results)
    set_last_write(config, now)
    return path, config, history, running


def test_rates_spend_budget_and_runway(cost_store, open_page) -> None:
    path, _, history, running = cost_store
    before = time.time()
    at = open_page(path, "cost")
    after = time.time()
    shown = metrics(at)
    assert shown["RunPod pods"] == f"${running:,.2f}/h" == "$7.87/h"  # 1.89 + 5.98; the exited pod is not billed
    assert shown["Serverless workers"] == "$1.50/h"  # 3 running workers x worker_hour_usd 0.5
    k8s = (4 * 0.031 + 8 * 0.004 + 1 * 1.89) + (2.5 * 0.031 + 4 * 0.004)
    assert shown["Kubernetes requests"] == f"${k8s:,.2f}/h"
    total = running + 1.5 + k8s
    assert shown["Now, all sources"] == f"${total:,.2f}/h"
    assert shown["Idle GPU pods"] == "$1.89/h"

    # spend: the runpod rate history and the one stored point of the cluster's requests (held <= 3 intervals)
    k8s_point = [(history[-1][0] + 55, k8s)]  # seeded at now - 5
    window = [spend(history, 180, t, t - 86400) + spend(k8s_point, 180, t, t - 86400) for t in (before, after)]
    value = float(shown["Spent, last 24 h"].strip("$").replace(",", ""))
    assert min(window) - 0.01 <= value <= max(window) + 0.01

    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    mtd = [spend(history, 180, t, month_start) + spend(k8s_point, 180, t, month_start) for t in (before, after)]
    assert "Month to date" in shown and "(estimated)" not in "".join(shown)
    runway = [(2000 - m) / (total * 24) for m in mtd]
    shown_runway = float(re.match(r"([\d.]+) days", shown["Runway"]).group(1))
    assert min(runway) - 0.05 <= shown_runway <= max(runway) + 0.05
    assert shown["Burn rate"] == f"${total * 24:,.2f}/day"

    # a short window shows less spend, never a shorter month
    short = metrics(open_page(path, "cost", state={"cost_window": "15 min"}))
    month = float(shown["Month to date"].strip("$").replace(",", ""))
    assert abs(float(short["Month to date"].strip("$").replace(",", "")) - month) < 0.05
    assert float(short["Spent, last 15 min"].strip("$")) < value


def test_pods_workers_namespaces_and_csv(cost_store, open_page) -> None:
    path, *_ = cost_store
    at = open_page(path, "cost")
    pods = at.dataframe[0].value.set_index("pod")
    assert pods.loc["train-a", "idle"] == "IDLE" and pods.loc["train-b", "idle"] == ""
    assert list(pods.index) == ["train-a", "train-b", "old"]  # idle running pods first, exited last
    workers = at.dataframe[1].value.set_index("endpoint")
    assert workers.loc["ep-embed", "flag"] == "workers up, no jobs"
    assert workers.loc["ep-chat", "flag"] == ""
    namespaces = at.dataframe[2].value.set_index("namespace")
    assert namespaces.loc["shop", "$/h"] == round(4 * 0.031 + 8 * 0.004 + 1.89, 4)
    assert list(namespaces.index) == ["shop", "web"]  # most expensive first

    button = at.get("download_button")[0]
    assert button.proto.label == "Download CSV (cost review)"
    body = texts(at)
    assert "No budget" not in body


def test_csv_rows_are_the_page_rows(cost_store) -> None:
    from hulk_ops.dashboard.readmodel import ReadModel
    from hulk_ops.dashboard.readmodel.cost import cost_report
    from hulk_ops.dashboard.views.cost import csv

    _, config, _, running = cost_store
    frame = pd.read_csv(io.StringIO(csv(cost_report(ReadModel(config), 86400))))
    pods = frame[frame["source"] == "runpod pod"]
    assert pods[pods["status"] == "RUNNING"]["usd_per_hour"].sum() == pytest.approx(running)
    assert set(frame["source"]) == {"runpod pod", "runpod serverless", "kubernetes namespace"}
    assert frame["usd_per_month"].tolist() == pytest.approx((frame["usd_per_hour"] * 730).tolist())


def test_unset_prices_are_named_instead_of_zero(write_config, store_redis_url, store_prefix, open_page) -> None:
    path = write_config([
        {"name": "k8s-main", "kind": "kubernetes", "url": "https://k:6443", "token": "t", "interval_s": 60},
    ], store={"redis_url": store_redis_url, "prefix": store_prefix})
    config = load_config(path)
    now = time.time()
    seed(config, [result("k8s-main", "kubernetes", "up", now - 5, 20.0, "v1.33.4", metrics=NS)])
    set_last_write(config, now)
    at = open_page(path, "cost")
    assert metrics(at)["Kubernetes requests"] == "no prices"
    assert "set actions.prices" in texts(at)
