"""`/api/v1`: InfraAI's JSON API, a sub-application of the bot's aiohttp app.

A sub-application so that its middleware (aiohttp's own 404/405 in the API's error shape)
costs `/alerts` nothing.
"""

from __future__ import annotations

from aiohttp import web

from core.runtime import Runtime

PREFIX = "/api/v1"


async def _openapi(_request: web.Request) -> web.Response:
    from bot.http.api.openapi import document

    return web.json_response(document())


def create_api(runtime: Runtime) -> web.Application:
    from bot.http.api.framework import (
        LIMITER_KEY,
        MAX_BODY,
        RUNTIME_KEY,
        RateLimiter,
        json_errors,
        wrap,
    )
    from bot.http.api.routes import ENDPOINTS

    api = web.Application(client_max_size=MAX_BODY, middlewares=[json_errors])
    api[RUNTIME_KEY] = runtime
    api[LIMITER_KEY] = RateLimiter()
    api.router.add_get("/openapi.json", _openapi)
    for endpoint in ENDPOINTS:
        api.router.add_route(endpoint.method, endpoint.path, wrap(endpoint))
    return api


API_APP = web.AppKey("api_app", web.Application)


def add_api(app: web.Application, runtime: Runtime) -> None:
    api = create_api(runtime)
    app[API_APP] = api
    app.add_subapp(PREFIX, api)


def api_app(app: web.Application) -> web.Application:
    """The API's own application inside the bot's (its rate limiter lives there)."""
    return app[API_APP]
