"""Policies: Alertmanager-style matchers, sandboxed param templates, and the engine."""
