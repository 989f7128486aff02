"""The long-range tier's summaries: what is encoded decodes the same, compacted or not; a day merged from its
hours keeps every count; window totals equal the sum of the decoded summaries; percentiles from the histogram
stay within the stated error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hulk_ops.collectors import rollups

pytestmark = pytest.mark.unit

latencies = st.lists(st.one_of(st.none(), st.floats(0.001, 1e6)), max_size=400)
statuses = st.integers(0, 2)


def _summary(slot: int, lat: list, status_seed: int, metric: list[float]) -> rollups.Summary:
    status = np.array([(i * 7 + status_seed) % 3 for i in range(len(lat))], dtype=np.uint8)
    values = np.array([np.nan if v is None else v for v in lat], dtype=np.float64)
    metrics = {3: np.array(metric, dtype=np.float64)} if metric else {}
    return rollups.summarise(slot, status, values, metrics)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(latencies, statuses, st.lists(st.floats(-1e9, 1e9), max_size=5)), min_size=1,
                max_size=24))
def test_encode_decode_compact_round_trip(hours):
    summaries = [_summary(slot, lat, seed, metric) for slot, (lat, seed, metric) in enumerate(hours)]
    value = rollups.HEAD.pack(0, 0) + b"".join(rollups.encode(s) for s in summaries)
    for stored in (value, rollups.compacted(value)):
        decoded = rollups.decode(stored)
        assert [d.slot for d in decoded] == [s.slot for s in summaries]
        for d, s in zip(decoded, summaries, strict=True):
            assert d.counts.tolist() == s.counts.tolist()
            assert d.hist.tolist() == np.minimum(s.hist, rollups.COUNT_MAX).tolist()
            assert d.metrics.keys() == s.metrics.keys()
            for mid, m in s.metrics.items():
                assert d.metrics[mid].max == pytest.approx(m.max, rel=2e-5)
                assert d.metrics[mid].last == pytest.approx(m.last, rel=2e-5)
        hist, counts = rollups.totals([stored], [0], 1)
        assert counts[0].tolist() == np.sum([s.counts for s in summaries], axis=0).tolist()
        assert hist[0].tolist() == np.sum([d.hist for d in rollups.decode(stored)], axis=0).tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(latencies, statuses), max_size=6), st.integers(0, 2),
                          st.integers(0, 3), st.integers(0, 5)), max_size=8),
       st.integers(0, 30), st.integers(0, 30))
def test_window_sums_over_many_values_equal_the_decoded_summaries(specs, first, span):
    """Values of every form side by side (plain, compacted, compacted with summaries appended later, missing),
    several per row: `totals` and `slot_counts` add up exactly what `decode` reads."""
    values, rows = [], []
    for i, (hours, form, row, later) in enumerate(specs):
        summaries = [_summary(slot * 3 + i % 3, lat, seed, [float(slot)]) for slot, (lat, seed) in enumerate(hours)]
        plain = rollups.HEAD.pack(0, 0) + b"".join(rollups.encode(s) for s in summaries)
        if form == 0:
            value = plain if summaries else None
        else:
            value = rollups.compacted(plain) or plain
            if form == 2:
                value += b"".join(rollups.encode(_summary(20 + k, [1.0, 2.0], k, [])) for k in range(later))
        values.append(value)
        rows.append(row)
    last = min(first + span, 31)
    hist, counts = rollups.totals(values, rows, 4, slots=(first, last))
    want_hist, want_counts = np.zeros((4, rollups.HIST_BUCKETS), np.int64), np.zeros((4, 3), np.int64)
    per_slot = np.zeros((len(values), rollups.SLOTS, 3), np.int64)
    for i, (value, row) in enumerate(zip(values, rows, strict=True)):
        for s in rollups.decode(value):
            per_slot[i, s.slot] += s.counts
            if first <= s.slot <= last:
                want_hist[row] += s.hist
                want_counts[row] += s.counts
    assert hist.tolist() == want_hist.tolist() and counts.tolist() == want_counts.tolist()
    assert rollups.slot_counts(values).tolist() == per_slot.tolist()


def test_day_merge_and_slot_filter():
    rng = np.random.default_rng(1)
    hours = [_summary(h, list(rng.lognormal(1, 0.5, 50)), h, [float(h), float(h + 1)]) for h in range(24)]
    day = rollups.merge(5, hours)
    assert day.slot == 5 and day.samples == 24 * 50
    assert day.metrics[3].min == 0.0 and day.metrics[3].max == 24.0 and day.metrics[3].last == 24.0
    assert day.metrics[3].mean == pytest.approx(np.mean([h + 0.5 for h in range(24)]))
    value = rollups.HEAD.pack(0, 0) + b"".join(rollups.encode(h) for h in hours)
    _hist, counts = rollups.totals([value], [0], 1, slots=(6, 8))
    assert int(counts.sum()) == 3 * 50


def test_percentiles_within_stated_error():
    rng = np.random.default_rng(2)
    lat = rng.lognormal(np.log(3), 0.8, 20_000)
    summary = rollups.summarise(0, np.zeros(lat.size, dtype=np.uint8), lat)
    got = rollups.hist_quantiles(summary.hist[None, :], [0.5, 0.95, 0.99])[0]
    exact = np.percentile(lat, [50, 95, 99])
    assert np.all(np.abs(got - exact) / exact < rollups.HIST_ERROR_PCT / 100)


def test_month_arithmetic():
    day = 20_791  # 2026-12-04
    month, slot = rollups.month_of_day(day)
    assert (month // 12, month % 12 + 1, slot + 1) == (2026, 12, 4)
    assert rollups.month_start_day(month) == day - 3
    assert rollups.month_end_day(month) == day - 3 + 31
