"""What the Actions page offers to pick, from probe results (hulk_ops/dashboard/readmodel/choices.py)."""

from __future__ import annotations

from hulk_ops.core.action_config import ScaleBounds
from hulk_ops.dashboard.readmodel import choices
from tests.seed import result

NOW = 1_700_000_000.0


def test_streams_carry_their_figures_and_the_largest_lag() -> None:
    found = choices.streams(result("q", "nats", "up", NOW, metrics={
        "stream.ORDERS.messages": 11000, "stream.ORDERS.bytes": 2 * 1024 * 1024, "stream.ORDERS.consumers": 2,
        "consumer.ORDERS.billing.pending": 11000, "consumer.ORDERS.audit.pending": 3,
    }, details={"streams": [{"name": "ORDERS", "consumers": ["billing", "audit"]}, {"name": "NEW", "consumers": []},
                            {"name": ""}]}))
    assert [s.label() for s in found] == ["ORDERS · 11,000 msgs · 2.0 MiB · 2 consumers · max lag 11,000", "NEW"]
    assert choices.streams(None) == []


def test_deployments_scalable_first_unbounded_with_the_reason() -> None:
    bounds = [ScaleBounds(target="k", namespace="shop", deployment="web.v2", min=1, max=5),
              ScaleBounds(target="k", namespace="shop", deployment="gone", min=0, max=2),
              ScaleBounds(target="other", namespace="shop", deployment="api", min=1, max=3)]
    found = choices.deployments(result("k", "kubernetes", "up", NOW, metrics={
        "deploy.shop.web.v2.desired": 3, "deploy.shop.web.v2.available": 2,
        "deploy.shop.api.desired": 1, "deploy.shop.api.available": 1, "deployments": 2,
    }), "k", bounds)
    assert [d.label() for d in found] == ["shop/gone (replicas 0..2)", "shop/web.v2 (replicas 1..5) · 2/3 available",
                                          "shop/api · 1/1 available"]
    assert [d.why_not for d in found] == [None, None, "no replica bounds in config (actions.scale)"]


def test_pods_running_and_dearest_first() -> None:
    pods = [{"id": "a1", "name": "a1", "status": "EXITED", "gpu_type": "A40", "gpu_count": 1, "cost_per_hr": 0.4},
            {"id": "b2", "name": "train", "status": "RUNNING", "gpu_type": "H100", "gpu_count": 2, "cost_per_hr": 5.98},
            {"id": "c3", "status": "RUNNING", "gpu_type": "A40", "gpu_count": 1, "cost_per_hr": 0.39}, {"name": "x"}]
    found = choices.pods(result("g", "runpod", "up", NOW, details={"pods": pods}))
    assert [p.label() for p in found] == ["train (b2) · running · 2x H100 · 5.980 $/h",
                                          "c3 · running · 1x A40 · 0.390 $/h", "a1 · exited · 1x A40 · 0.400 $/h"]


def test_gpu_types_offered_ones_cheapest_first() -> None:
    answer = {"data": {"gpuTypes": [
        {"id": "H100", "displayName": "H100 80GB", "memoryInGb": 80,
         "lowestPrice": {"uninterruptablePrice": 2.99, "stockStatus": "Low"}},
        {"id": "A40", "displayName": "A40", "memoryInGb": 48, "lowestPrice": {"uninterruptablePrice": None}},
        {"id": "L4", "displayName": "L4", "memoryInGb": 24,
         "lowestPrice": {"uninterruptablePrice": 0.44, "stockStatus": "High"}}]}}
    assert [g.label() for g in choices.gpu_types(answer)] == [
        "L4 · 24 GB · 0.44 $/h · stock high", "H100 80GB · 80 GB · 2.99 $/h · stock low",
        "A40 · 48 GB · no on-demand offer now"]
    assert choices.gpu_types({}) == []


def test_a_result_older_than_three_intervals_is_stale() -> None:
    fresh = result("q", "nats", "up", NOW - 20)
    assert choices.age(fresh, 15.0, NOW) == (20.0, False)
    assert choices.age(result("q", "nats", "up", NOW - 46), 15.0, NOW)[1] is True
    assert choices.age(None, 15.0, NOW) == (None, True)
