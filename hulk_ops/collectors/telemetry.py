"""The collector's own Prometheus metrics. A fresh `CollectorMetrics(registry)` per test."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.probes = Counter("hulk_ops_probes", "Probe results by status", ["target", "kind", "status"], registry=r)
        self.duration = Histogram(
            "hulk_ops_probe_duration_seconds", "Wall time of one probe check", ["target", "kind"],
            buckets=DURATION_BUCKETS, registry=r,
        )
        self.target_up = Gauge(
            "hulk_ops_target_up", "1 when the target's latest status is up or degraded", ["target", "kind"], registry=r
        )
        self.target_status = Gauge(
            "hulk_ops_target_status", "Latest status code: 0 up, 1 degraded, 2 down", ["target", "kind"], registry=r
        )
        self.breaker_open = Gauge("hulk_ops_breaker_open", "1 while the target's circuit breaker is open",
                                  ["target"], registry=r)
        self.cycle_lag = Gauge("hulk_ops_cycle_lag_seconds",
                               "Largest delay between a probe's planned and actual start in the last second",
                               registry=r)
        self.start_lag = Histogram("hulk_ops_probe_start_lag_seconds", "Delay between planned and actual start",
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5), registry=r)
        self.skipped = Counter("hulk_ops_probes_skipped", "Runs skipped because the previous one still ran",
                               ["target"], registry=r)
        self.store_write = Histogram("hulk_ops_store_write_seconds", "Time of one batched store write",
                                     buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5), registry=r)
        self.store_up = Gauge("hulk_ops_store_up", "1 when the last store write succeeded", registry=r)
        self.store_buffered = Gauge("hulk_ops_store_buffered_results", "Results waiting for the store", registry=r)
        self.store_dropped = Counter("hulk_ops_store_dropped_results",
                                     "Results dropped (oldest first) while the buffer was full", registry=r)
        self.last_cycle = Gauge("hulk_ops_last_probe_timestamp_seconds", "Unix time of the latest finished probe",
                                registry=r)
        self.targets_owned = Gauge("hulk_ops_targets_owned", "Targets this replica probes", ["replica"], registry=r)
        self.config_reload_success = Gauge("hulk_ops_config_reload_success",
                                           "1 when the latest config reload succeeded (or none was tried), 0 when "
                                           "it was refused and the previous config stays in force", registry=r)
        self.config_reload_success.set(1)
        self.config_last_reload = Gauge("hulk_ops_config_last_reload_timestamp_seconds",
                                        "Unix time the config in force was loaded (start or latest good reload)",
                                        registry=r)
        self.probe_interval = Gauge("hulk_ops_probe_interval_seconds", "Configured probe interval of each target",
                                    ["target", "kind"], registry=r)
        self.slo_objective = Gauge("hulk_ops_slo_objective_ratio",
                                   "Availability objective of each target (0-1), for error-budget burn rules",
                                   ["target", "kind"], registry=r)
        # Prometheus query pulls (hulk_ops/collectors/prometheus_pull.py), labelled by query name (unique per config)
        self.query_failures = Counter("hulk_ops_query_failures", "Failed Prometheus query pulls", ["query"],
                                      registry=r)
        self.query_up = Gauge("hulk_ops_query_up", "1 when the query's latest pull succeeded", ["query"], registry=r)
        self.query_series = Gauge("hulk_ops_query_series", "Series written by the query's latest pull", ["query"],
                                  registry=r)
        self.query_last_success = Gauge("hulk_ops_query_last_success_timestamp_seconds",
                                        "Unix time of the query's latest successful pull", ["query"], registry=r)
        # notifications (hulk_ops/collectors/notify/)
        self.notifications = Counter("hulk_ops_notifications", "Webhook notification outcomes",
                                     ["webhook", "event", "outcome"], registry=r)
        self.notify_outbox = Gauge("hulk_ops_notify_outbox_messages", "Messages waiting in a webhook's outbox",
                                   ["webhook"], registry=r)
        self.incidents_open = Gauge("hulk_ops_incidents_open", "Incidents notified as open and not yet resolved",
                                    registry=r)
