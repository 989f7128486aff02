"""The metric catalog type: key patterns to Prometheus names and labels, and self-contradictions refused."""

import pytest

from hulk_ops.core.catalog import Catalog, CatalogError, MetricSpec

pytestmark = pytest.mark.unit


def test_patterns_give_labels_and_derived_names():
    cat = Catalog([
        MetricSpec("used_memory_bytes", "Memory used by Redis", unit="bytes"),
        MetricSpec("memory_used_pct", "Memory used of maxmemory", unit="ratio", scale=0.01, prom="memory_used_ratio"),
        MetricSpec("consumer.<stream>.<consumer>.pending", "Messages not yet delivered"),
        MetricSpec("replication_lag_s", "Replay lag", unit="seconds", prom="replication_lag_seconds"),
        MetricSpec("stream.<stream>.redelivered", "Redeliveries", type="counter"),
    ])
    spec, labels = cat.lookup("consumer.ORDERS.billing.pending")
    assert (spec.prom, labels) == ("consumer_pending", {"stream": "ORDERS", "consumer": "billing"})
    assert spec.glob == "consumer.*.*.pending"
    assert cat.lookup("used_memory_bytes")[0].prom == "used_memory_bytes"
    assert cat.lookup("stream.S.redelivered")[0].prom == "stream_redelivered_total"
    assert cat.outside(["consumer.a.b.pending", "consumer.a.pending", "nope", "memory_used_pct"]) == [
        "consumer.a.pending", "nope"]


@pytest.mark.parametrize(("spec", "words"), [
    ({"key": "x", "help": "h", "unit": "ms"}, "unit 'ms'"),
    ({"key": "lag_s", "help": "h", "unit": "seconds", "prom": "lag_s"}, "must end with '_seconds'"),
    ({"key": "a.<x>.<x>", "help": "h"}, "label appears twice"),
    ({"key": "errors", "help": "h", "type": "counter", "prom": "errors"}, "must end with '_total'"),
    ({"key": "9x", "help": "h"}, "not a valid Prometheus name"),
])
def test_contradictions_are_refused(spec, words):
    with pytest.raises(CatalogError, match=words):
        MetricSpec(**spec)


def test_a_key_declared_twice_is_refused():
    with pytest.raises(CatalogError, match="declared twice"):
        Catalog([MetricSpec("a", "h"), MetricSpec("a", "h")])


def test_two_keys_exported_under_one_name_are_refused():
    with pytest.raises(CatalogError, match="exported as 'pods', like pods_total"):
        Catalog([MetricSpec("pods_total", "h", prom="pods"), MetricSpec("pods", "h")])
