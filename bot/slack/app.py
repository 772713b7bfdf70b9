"""The Bolt app: one AsyncApp, listeners registered per surface, HTTP or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import inbound
from bot.slack.listeners import register_listeners
from core.config import Settings
from core.runtime import Runtime

log = logging.getLogger(__name__)


def slack_configured(settings: Settings) -> bool:
    return bool(
        settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token)
    )


def web_client(settings: Settings, *, retry_rate_limits: bool = False) -> AsyncWebClient:
    """A Web API client. Listeners' client waits out a 429 once (slack_sdk's handler); the
    notifier's does not, because the outbox reschedules instead of sleeping."""
    client = AsyncWebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10
    )
    if retry_rate_limits:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    return client


async def skip_retries(
    req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    """Slack retries a delivery it thinks failed; the first one was handled: ack and drop.

    Socket Mode sends `retry_attempt: 0` as `x-slack-retry-num: 0`, so only > 0 is a retry.
    """
    retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
    if retry.isdigit() and int(retry) > 0:
        return BoltResponse(status=200, body="")
    return await next()


def build_app(runtime: Runtime, client: AsyncWebClient) -> AsyncApp:
    settings = runtime.settings
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "socket-mode-needs-no-secret",
        # Every listener acks, hands its work to a background task (`in_background`) and
        # returns, so the answer goes out as soon as the listener returns. (With False,
        # Bolt polls for the ack every 10 ms: ≥ 10 ms per click, far more on a busy loop.)
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    inbound.quiet_bolt()
    app.middleware(skip_retries)
    register_listeners(app, runtime)
    return app


def mount(
    web_app: web.Application, app: AsyncApp, path: str = "/slack/events", *, secret: str
) -> None:
    """HTTP mode: one Request URL for events, the slash command and interactivity.

    Each request is verified and its body checked (`bot.slack.inbound`) before Bolt builds
    a request from it: what cannot be verified is 401, what is not a Slack payload 400.
    """
    if not secret:
        raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET")

    async def slack_events(request: web.Request) -> web.StreamResponse:
        try:
            raw = await request.read()
        except (HttpProcessingError, web.RequestPayloadError):  # e.g. gzip that is not
            return web.json_response({"error": "the body could not be decoded"}, status=400)
        try:
            text = inbound.read(secret, raw, request.headers, request.charset)
        except inbound.Refused as refused:
            log.info("slack request refused (%s): %s", refused.status, refused.reason)
            return web.Response(
                status=refused.status,
                text=inbound.refusal_body(refused),
                content_type="application/json",
            )
        bolt_request = inbound.bolt_request(text, request.query_string, request.headers)
        bolt_response: Any = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app.router.add_post(path, slack_events)
