"""The assistant's grafana_search_dashboards tool: against the fake Grafana, alone and
through the real ChatOllama loop (fake Ollama), with the registry's output cap."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from core.agent import grafana_tools
from core.agent.assistant import Assistant
from core.agent.tools import TOOLS, ToolContext
from core.runtime import Runtime
from tests.adapters.test_grafana import seeded
from tests.conftest import make_settings
from tests.fakes.grafana import TOKEN, FakeGrafana
from tests.fakes.ollama import MODEL, FakeOllama, Turn

CONTEXT = ToolContext(user="U0ALICE", conversation="T1:C0OPS:1700000000.000200")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = seeded()
    with fake.run_in_thread():
        yield fake


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    with fake.run_in_thread():
        yield fake


async def _runtime(db: str, **settings: object) -> Runtime:
    return Runtime.build(make_settings(db, **settings))


@pytest.fixture
async def runtime(
    sqlite_db: str, grafana: FakeGrafana, ollama: FakeOllama
) -> AsyncIterator[Runtime]:
    built = await _runtime(
        sqlite_db,
        grafana_url=grafana.url,
        grafana_token=TOKEN,
        ollama_base_url=ollama.url,
        ollama_model=MODEL,
        ollama_timeout_seconds=5,
    )
    yield built
    await built.close()


async def call(runtime: Runtime, arguments: object) -> dict:
    result = await TOOLS.call(runtime, "grafana_search_dashboards", arguments, CONTEXT)
    return json.loads(result.render(4000))


def test_the_tool_is_registered_with_the_catalogues_name() -> None:
    assert grafana_tools.LIMIT == 25
    [schema] = [s for s in TOOLS.schemas() if s["function"]["name"] == "grafana_search_dashboards"]
    query = schema["function"]["parameters"]["properties"]["query"]
    assert query["type"] == "string" and "maxLength" not in query  # validated, not shown


async def test_an_argument_past_the_catalogues_bounds_is_refused(runtime, grafana) -> None:
    result = await TOOLS.call(runtime, "grafana_search_dashboards", {"query": "x" * 201}, CONTEXT)
    assert result.status == "error" and "query" in (result.message or "")


async def test_search_returns_titles_folders_and_links(runtime, grafana) -> None:
    body = await call(runtime, {"query": "node"})
    assert body == {
        "status": "ok",
        "message": "1 dashboard(s) matching 'node'",
        "data": [
            {
                "title": "Node Exporter Full",
                "folder": "Infrastructure",
                "url": f"{grafana.url}/d/node-full/node-exporter-full",
                "tags": ["linux"],
            }
        ],
    }
    assert (await call(runtime, {}))["message"] == "3 dashboard(s)"
    assert (await call(runtime, {"query": "zzz"}))["status"] == "no data"


async def test_bad_arguments_and_grafanas_refusals_are_the_models_information(
    runtime, grafana
) -> None:
    too_long = await call(runtime, {"query": "x" * 201})
    assert too_long["status"] == "error" and too_long["message"].startswith("bad arguments: query")
    grafana.fail_next(503)
    failed = await call(runtime, {"query": "node"})
    assert failed == {
        "status": "error",
        "message": "Grafana answered 503 for dashboard search: try again later",
    }


async def test_not_configured(sqlite_db) -> None:
    runtime = await _runtime(sqlite_db, grafana_url=None)
    try:
        body = await call(runtime, {})
    finally:
        await runtime.close()
    assert body == {"status": "error", "message": "Grafana is not configured: GRAFANA_URL is unset"}


async def test_many_dashboards_are_cut_to_the_limit_and_the_cap(runtime, grafana) -> None:
    for i in range(60):
        grafana.add_dashboard(f"svc-{i:02}", f"Service {i:02} " + "overview " * 8, [(1, "x")])
    result = await TOOLS.call(runtime, "grafana_search_dashboards", {"query": "service"}, CONTEXT)
    assert len(result.data) == 25 and "narrow the query" in result.message
    capped = result.render(1000)
    assert len(capped) <= 1000 and "narrow your query" in capped


async def test_the_model_gets_the_links(runtime, grafana, ollama) -> None:
    ollama.script(
        Turn.calls(("grafana_search_dashboards", {"query": "api"})),
        lambda request: Turn(
            content="See " + json.loads(request["messages"][-1]["content"])["data"][0]["url"]
        ),
    )
    answer = await Assistant(runtime).ask("Which dashboard shows API errors?", CONTEXT)
    assert answer.ok and answer.text == f"See {grafana.url}/d/api-red/api-red"
    assert answer.tool_calls == [{"name": "grafana_search_dashboards", "args": {"query": "api"}}]
