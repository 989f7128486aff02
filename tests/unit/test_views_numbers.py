"""The numbers behind the pages, checked against numpy on synthetic data: grouped quantiles, histogram
quantiles, downsampling, trend fits, error budget, spend integration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hulk_ops.dashboard.readmodel.chunks import FlatSamples
from hulk_ops.dashboard.readmodel.cost import integrate_usd, month_end, month_start
from hulk_ops.dashboard.readmodel.latency import budget_left
from hulk_ops.dashboard.readmodel.rollup import HIST_BUCKETS, hist_quantiles, summarise
from hulk_ops.dashboard.readmodel.series import (
    MAX_POINTS,
    FitSums,
    bucket_width,
    bucketize,
    group_quantiles,
    linear_fit,
)


def test_group_quantiles_equal_numpy_per_group() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(1, 1, 20_000)
    groups = rng.integers(0, 300, 20_000)
    got = group_quantiles(values, groups, 302, (0.5, 0.95, 0.99, 0.0, 1.0))
    for g in (0, 1, 150, 299):
        want = np.percentile(values[groups == g], [50, 95, 99, 0, 100])
        assert got[g] == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert np.isnan(got[300:]).all()  # groups without values


def test_group_quantiles_single_value_and_ties() -> None:
    got = group_quantiles(np.array([5.0, 2.0, 2.0, 2.0]), np.array([0, 1, 1, 1]), 2, (0.5, 0.95))
    assert got.tolist() == [[5.0, 5.0], [2.0, 2.0]]


def test_histogram_quantiles_within_bucket_precision() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(0, 2, 50_000), [0.01, 1e6]])  # plus two values outside the range
    groups = rng.integers(0, 40, values.size).astype(np.int32)
    hist, counts = summarise(FlatSamples(np.zeros(values.size), np.zeros(values.size, np.uint8), values, groups), 40)
    assert hist.shape == (40, HIST_BUCKETS) and counts[:, 0].sum() == values.size
    exact = group_quantiles(values, groups, 40, (0.5, 0.95))
    approx = hist_quantiles(hist, (0.5, 0.95))
    assert np.max(np.abs(approx / exact - 1)) < 0.031


def test_bucketize_keeps_few_points_raw_and_caps_many() -> None:
    ts = np.arange(100.0)
    few = bucketize(ts, ts * 2, 0, 100)
    assert few.raw and len(few) == 100 and few.columns["mean"].tolist() == (ts * 2).tolist()
    ts = np.arange(86_400.0)  # one value a second for a day
    many = bucketize(ts, np.ones_like(ts), 0, 86_400)
    assert not many.raw and len(many) <= MAX_POINTS and many.width_s == 60
    q = bucketize(ts, ts % 60, 0, 86_400, how="quantiles")
    assert q.columns["p50"][0] == pytest.approx(np.percentile(np.arange(60.0), 50))
    assert q.columns["max"][0] == 59


def test_bucketize_leaves_gaps_and_ignores_nan() -> None:
    ts = np.concatenate([np.arange(0, 3000.0), np.arange(6000, 9000.0)])
    values = np.where(ts % 2 == 0, 1.0, np.nan)
    out = bucketize(ts, values, 0, 9000, max_points=100)
    assert 3000 not in out.ts and not np.isnan(out.columns["mean"]).any()
    assert bucketize(ts, values, 6000, 9000, max_points=100).ts.min() >= 6000  # only the window
    assert bucket_width(0, 86_400, 1500) == 60 and bucket_width(0, 900, 1500) == 1


def test_fit_sums_merge_equals_one_fit_equals_polyfit() -> None:
    rng = np.random.default_rng(2)
    ts = 1.7e9 + np.sort(rng.uniform(0, 7200, 500))
    values = 3e8 + 1234.5 * (ts - ts[0]) + rng.normal(0, 1e5, ts.size)
    slope, intercept = np.polyfit(ts - ts[0], values, 1)
    one = linear_fit(ts, values)
    merged = FitSums(1.7e9).add(FitSums(1.7e9).add_points(ts[:200], values[:200]))
    merged.add(FitSums(1.7e9 + 3600).add_points(ts[200:], values[200:]))
    fit = merged.fit()
    assert one.slope == pytest.approx(slope, rel=1e-9) and fit.slope == pytest.approx(slope, rel=1e-9)
    assert fit.at(ts[0]) == pytest.approx(intercept, rel=1e-9) and fit.n == 500
    assert FitSums(0).add_points(np.array([5.0, 5.0]), np.array([1.0, 2.0])).fit() is None  # one instant


def test_error_budget() -> None:
    assert budget_left(1000, 0, 99.9) == 100.0
    assert budget_left(1000, 1, 99.9) == pytest.approx(0.0, abs=1e-9)  # 0.1 % of 1000 = 1 allowed
    assert budget_left(2000, 1, 99.9) == pytest.approx(50.0)
    assert budget_left(200, 3, 99.0) == pytest.approx(-50.0)  # overspent
    assert budget_left(0, 0, 99.9) is None


def test_spend_holds_each_rate_until_the_next_sample_at_most_the_gap() -> None:
    ts = np.array([0.0, 1800.0, 3600.0, 10_800.0])
    rate = np.array([2.0, 4.0, 1.0, 3.0])  # $/h
    # with a 2,000 s gap: 2 $/h for 30 min, 4 $/h for 30 min, 1 $/h for 2,000 s (then a gap), 3 $/h for 2,000 s
    assert integrate_usd(ts, rate, 0, 14_400, 2000) == pytest.approx(1 + 2 + 2000 / 3600 + 3 * 2000 / 3600)
    # with a 600 s gap every value counts for 600 s only
    assert integrate_usd(ts, rate, 0, 14_400, 600) == pytest.approx((2 + 4 + 1 + 3) * 600 / 3600)
    assert integrate_usd(ts, rate, 1800, 3600, 10_000) == pytest.approx(2 + 1 * 0 + 0)
    assert integrate_usd(ts[::-1], rate[::-1], 0, 3600, 10_000) == pytest.approx(1 + 2)  # order-independent
    assert integrate_usd(np.array([]), np.array([]), 0, 1, 1) == 0.0


def test_month_bounds_are_utc() -> None:
    ts = 1_709_251_200.0 + 3600  # 2024-03-01 01:00 UTC
    assert month_start(ts) == 1_709_251_200.0
    assert month_end(ts) - month_start(ts) == 31 * 86_400
    assert month_end(ts - 7200) - month_start(ts - 7200) == 29 * 86_400  # February 2024
    assert not math.isnan(month_end(ts))
