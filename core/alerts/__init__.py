"""Alerts: the Alertmanager webhook payload and its ingestion."""
