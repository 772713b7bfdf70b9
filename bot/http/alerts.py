"""`POST /alerts`: Alertmanager's webhook.

Authenticated (bearer token or basic auth, as Alertmanager's http_config sends them),
bounded (1 MiB), validated (400 with the reason), and answered 200 only after the commit
that records it — 503 when the database cannot take it, so Alertmanager retries.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from bot.http.metrics import Metrics
from core.alerts.group_commit import DatabaseUnavailable
from core.alerts.webhook import MalformedBody, PayloadError, decode_payload
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
    # Header values arrive as text with undecodable bytes kept as surrogates: compare bytes.
    header = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    scheme, _, credentials = header.partition(b" ")
    if scheme.lower() == b"bearer":
        return hmac.compare_digest(credentials.strip(), token.encode())
    if scheme.lower() == b"basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:  # binascii.Error: not base64
            return False
        _user, _, password = decoded.partition(b":")
        return hmac.compare_digest(password, token.encode())
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
            # The whole body (chunked, or as long as Content-Length says), decompressed;
            # the application's client_max_size is MAX_BODY.
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "body over 1 MiB", metrics, "too_large")
        except (TimeoutError, HttpProcessingError, RequestPayloadError, ConnectionError) as exc:
            # Not the exception's text: it can quote the input.
            reason = "truncated or badly encoded" if isinstance(exc, RequestPayloadError) else ""
            reason = reason or type(exc).__name__
            return _error(400, f"body could not be read: {reason}", metrics, "malformed")
        try:
            payload = decode_payload(body)
        except MalformedBody as exc:
            return _error(400, str(exc), metrics, "malformed")
        except PayloadError as exc:
            return _error(400, str(exc), metrics, "invalid")
        try:
            outcome = await runtime.alerts.ingest(payload)
        except DatabaseUnavailable as exc:
            log.warning("delivery refused with 503: %s", exc)
            # The reason stays in the log: the sender learns no driver, host or database name.
            return _error(503, "database unavailable, retry later", metrics, "database")
        firing = sum(alert.status == "firing" for alert in payload.alerts)
        for status, count in (("firing", firing), ("resolved", len(payload.alerts) - firing)):
            if count:  # one labelled counter per status, not one look-up per alert
                metrics.alerts_received.labels(status).inc(count)
        for policy, count in outcome.by_policy.items():
            metrics.proposals_created.labels(policy).inc(count)
        for listener in runtime.on_ingested:
            listener(outcome)
        answer = {"received": outcome.received, "proposals": outcome.proposals}
        if outcome.refused:
            metrics.rejects.labels("refused_alert").inc(outcome.refused)
            answer["refused"] = outcome.refused
        return web.json_response(answer)
    finally:
        metrics.latency.observe(time.perf_counter() - started)
