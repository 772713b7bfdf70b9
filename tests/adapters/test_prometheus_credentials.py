"""`PROMETHEUS_URL` may carry basic-auth credentials (`https://user:pass@prom`, the only
way to give them): they go in the Authorization header and never into a message, the
status line, the log or the assistant's view."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.prometheus import PrometheusAdapter, PrometheusError
from tests.peers.prometheus_stack import free_port

SECRET = "s3cret-pass"


@pytest.fixture
async def prometheus() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.path == "/-/ready":
            return web.Response(text="Prometheus Server is Ready.\n")
        return web.json_response(
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"},
            status=400,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://alice:{SECRET}@127.0.0.1:{server.port}", seen
    finally:
        await server.close()


async def test_credentials_go_in_the_header_and_nowhere_else(prometheus) -> None:
    url, seen = prometheus
    adapter = PrometheusAdapter(url)
    assert SECRET not in adapter.base_url and SECRET not in repr(vars(adapter).get("base_url"))
    with pytest.raises(PrometheusError) as refused:
        await adapter.query("up +")
    assert "parse error" in str(refused.value) and SECRET not in str(refused.value)
    import asyncio

    ok, detail = await asyncio.to_thread(adapter.health)
    assert ok and SECRET not in detail
    expected = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert seen == [expected, expected]


async def test_an_unreachable_server_is_named_without_its_credentials() -> None:
    adapter = PrometheusAdapter(f"http://alice:{SECRET}@127.0.0.1:{free_port()}")
    with pytest.raises(PrometheusError) as refused:
        await adapter.query("up")
    assert "unreachable" in str(refused.value) and SECRET not in str(refused.value)
    ok, detail = adapter.health()
    assert not ok and SECRET not in detail and "127.0.0.1" in detail
