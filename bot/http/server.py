"""The HTTP server around the application, quiet about what it could not parse.

aiohttp answers a request it cannot parse with a 400 whose body quotes the offending line,
and logs it with the same text — a header line can carry the alerts token or a Slack
signature. Here such errors answer a fixed reason and log one line without the input; a
body that cannot be read (truncated, bad gzip) is one line too, not a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger("bot.http.server")


class _QuietRequestHandler(RequestHandler):
    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # A body the client sent truncated or badly encoded fails again when aiohttp drains
        # what the handler left unread; the handler has answered it (400) already.
        exc = kwargs.get("exc_info")
        if isinstance(exc, RequestPayloadError | HttpProcessingError):
            log.info("dropped the rest of an unreadable request body: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            return super().handle_error(request, status, exc, message)
        # A malformed request (status 4xx): the exception's text quotes the input.
        log.info(
            "refused a malformed request from %s: %s %s",
            request.remote,
            status,
            type(exc).__name__ if exc is not None else "",
        )
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
        response = web.Response(status=status, text=f"{status} {reason}: malformed request\n")
        response.force_close()
        return response


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class QuietAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections use the quiet request handler."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the server (its arguments are the application's to choose); only
        # the handler class it makes per connection changes.
        server.__class__ = _QuietServer
        return server


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    return QuietAppRunner(app, **kwargs)
