from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hulk_ops.collectors.codec import SAMPLE, decode_points, decode_samples, encode_point, encode_sample, hour_of

BASE = 1_790_000_000.0


@given(st.lists(st.tuples(st.floats(0, 7199.9), st.sampled_from(["up", "degraded", "down"]),
                          st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))), max_size=50))
def test_samples_round_trip_across_hours(samples: list[tuple[float, str, float | None]]) -> None:
    chunks: dict[int, bytes] = {}
    for offset, status, latency in samples:
        ts = BASE + offset
        chunks[hour_of(ts)] = chunks.get(hour_of(ts), b"") + encode_sample(ts, status, latency)
    decoded = decode_samples(sorted(chunks.items()), BASE - 1, BASE + 7300)
    assert len(decoded) == len(samples)
    assert len(next(iter(chunks.values()), b"")) % SAMPLE.size == 0
    codes = {"up": 0, "degraded": 1, "down": 2}

    def key(ds: int, code: int, latency: float | None) -> tuple[int, int, float]:
        return ds, int(code), -1.0 if latency is None or math.isnan(latency) else float(np.float32(latency))

    expected = sorted(key(int((BASE + o) * 10 + 1e-6), codes[s], lat) for o, s, lat in samples)
    got = sorted(key(round(ts * 10), code, lat)
                 for ts, code, lat in zip(decoded["ts"], decoded["status"], decoded["latency"], strict=True))
    assert got == expected


def test_window_filters_and_missing_chunks() -> None:
    hour = hour_of(BASE)
    blob = b"".join(encode_point(BASE + i * 60, float(i)) for i in range(10))
    points = decode_points([(hour, blob), (hour + 1, None)], BASE + 120, BASE + 300)
    assert list(points["value"]) == [2.0, 3.0, 4.0, 5.0]
