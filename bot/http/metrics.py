"""Prometheus metrics for the HTTP surface (one registry per app, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts_received = Counter(
            "infraai_alerts_received_total",
            "Alerts received on /alerts, by status.",
            ["status"],
            registry=self.registry,
        )
        self.proposals_created = Counter(
            "infraai_proposals_created_total",
            "Proposals created from alerts, by policy.",
            ["policy"],
            registry=self.registry,
        )
        self.rejects = Counter(
            "infraai_webhook_rejects_total",
            "Webhook deliveries refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "infraai_webhook_duration_seconds",
            "Time to answer POST /alerts (commit included).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
