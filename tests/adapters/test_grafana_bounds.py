"""A Grafana answer is read with a cap: a misconfigured GRAFANA_URL (or a huge dashboard)
cannot fill the bot's memory; the person gets one line saying why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from adapters.grafana import MAX_RESPONSE_BYTES, GrafanaAdapter, GrafanaError
from tests.fakes.threaded import serve_in_thread


@pytest.fixture
def endless() -> Iterator[str]:
    state: dict[str, web.AppRunner] = {}

    async def search(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b"[")
        chunk = b'{"uid": "x", "title": "' + b"a" * 65_000 + b'"},'
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 10):
            await response.write(chunk)
        return response

    async def start() -> str:
        app = web.Application()
        app.router.add_get("/api/search", search)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def stop() -> None:
        await state["runner"].cleanup()

    with serve_in_thread(start, stop, "endless-grafana") as url:
        yield url


def test_an_answer_past_the_cap_is_refused_in_one_line(endless: str) -> None:
    adapter = GrafanaAdapter(endless, "token")
    try:
        with pytest.raises(GrafanaError) as refused:
            adapter.search_dashboards("node")
    finally:
        adapter.close()
    assert refused.value.reason == "too_large"
    assert "over 20 MiB" in str(refused.value) and "\n" not in str(refused.value)
