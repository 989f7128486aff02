"""The dashboard's only way into the store: typed, read-only views over the Redis keys.

`store.ReadModel` is the port (latest results, history chunks, events, collectors); the other
modules turn what it reads into what a page shows, one module per concern: `latency`, `cost`,
`capacity`, `timeline` (incidents), `radar`, `target` (one target's detail). `series` holds the
numeric helpers (bucketing, quantiles, trend fits) and `rollup` the per-hour summaries that keep
24 h of a large fleet fast. Pages never parse raw keys.
"""

from hulk_ops.dashboard.readmodel.store import (
    DISPLAY_STATUSES,
    STALE_INTERVALS,
    CollectorView,
    Delivery,
    Event,
    Freshness,
    Overview,
    ReadModel,
    StoreUnavailable,
    TargetView,
    status_of,
)

__all__ = [
    "DISPLAY_STATUSES",
    "STALE_INTERVALS",
    "CollectorView",
    "Delivery",
    "Event",
    "Freshness",
    "Overview",
    "ReadModel",
    "StoreUnavailable",
    "TargetView",
    "status_of",
]
