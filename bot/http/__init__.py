"""The HTTP surface: Alertmanager's webhook, health, readiness and metrics."""
