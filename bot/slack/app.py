"""The Bolt app: one AsyncApp, listeners registered per surface, HTTP or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

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
    app.middleware(skip_retries)
    register_listeners(app, runtime)
    return app


def mount(web_app: web.Application, app: AsyncApp, path: str = "/slack/events") -> None:
    """HTTP mode: one Request URL for events, the slash command and interactivity."""

    async def slack_events(request: web.Request) -> web.StreamResponse:
        # slack_sdk's verifier raises on a timestamp that is not a number (a 500 with a
        # traceback); a request that cannot be verified is unauthenticated.
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        if timestamp is not None and not timestamp.strip().isdigit():
            return web.Response(status=401, text="invalid request timestamp")
        bolt_request = await to_bolt_request(request)
        bolt_response: Any = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app.router.add_post(path, slack_events)
