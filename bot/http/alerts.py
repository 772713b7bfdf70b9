"""`POST /alerts`: Alertmanager's webhook.

Authenticated (bearer token or basic auth, as Alertmanager's http_config sends them),
bounded (1 MiB), validated (400 with the reason), and answered 200 only after the commit
that records it — 503 when the database cannot take it, so Alertmanager retries.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import time

from aiohttp import web

from bot.http.metrics import Metrics
from core.alerts.group_commit import DatabaseUnavailable
from core.alerts.webhook import PayloadError, parse_payload
from core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
RUNTIME = web.AppKey("runtime", Runtime)
METRICS = web.AppKey("metrics", Metrics)


def _error(status: int, reason: str, metrics: Metrics, label: str) -> web.Response:
    metrics.rejects.labels(label).inc()
    return web.json_response({"error": reason}, status=status)


def _authorised(request: web.Request, token: str | None) -> bool:
    if token is None:
        # No token configured: only this machine may post (the embedded default).
        peer = request.remote or ""
        try:
            return ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return False
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        _user, _, password = decoded.partition(":")
        return hmac.compare_digest(password.encode(), token.encode())
    return False


async def post_alerts(request: web.Request) -> web.Response:
    runtime, metrics = request.app[RUNTIME], request.app[METRICS]
    started = time.perf_counter()
    try:
        if not _authorised(request, runtime.settings.alerts_token):
            return _error(401, "missing or wrong credentials", metrics, "unauthorized")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "body over 1 MiB", metrics, "too_large")
        try:
            body = await request.content.read(MAX_BODY + 1)
        except (ConnectionError, TimeoutError):
            return _error(400, "body could not be read", metrics, "malformed")
        if len(body) > MAX_BODY:
            return _error(413, "body over 1 MiB", metrics, "too_large")
        try:
            payload = parse_payload(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}", metrics, "malformed")
        except PayloadError as exc:
            return _error(400, str(exc), metrics, "invalid")
        try:
            outcome = await runtime.alerts.ingest(payload)
        except DatabaseUnavailable as exc:
            return _error(503, f"database unavailable, retry later: {exc}", metrics, "database")
        for alert in payload.alerts:
            metrics.alerts_received.labels(alert.status).inc()
        for policy, count in outcome.by_policy.items():
            metrics.proposals_created.labels(policy).inc(count)
        for listener in runtime.on_ingested:
            listener(outcome)
        return web.json_response({"received": outcome.received, "proposals": outcome.proposals})
    finally:
        metrics.latency.observe(time.perf_counter() - started)
