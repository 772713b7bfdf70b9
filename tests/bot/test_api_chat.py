"""`POST /api/v1/chat`: the assistant over HTTP (the real ChatOllama against the fake Ollama),
as JSON and as server-sent events; a change it proposes waits for a person like any other."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from core.api_tokens import new_token
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.ollama import MODEL, FakeOllama, Turn
from tests.helpers import install_policies, policy, rows

CHAT, CHAT_ENTRY = new_token("scripts", frozenset({"read", "chat"}))
OTHER, OTHER_ENTRY = new_token("other", frozenset({"chat"}))
AS_CHAT = {"Authorization": f"Bearer {CHAT}"}
AS_OTHER = {"Authorization": f"Bearer {OTHER}"}


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    with fake.run_in_thread():
        yield fake


@pytest.fixture
async def client(db_url: str, ollama: FakeOllama) -> AsyncIterator[TestClient[Any, Any]]:
    settings = make_settings(
        db_url,
        ollama_base_url=ollama.url,
        ollama_model=MODEL,
        ollama_timeout_seconds=5,
        infraai_api_tokens=f"{CHAT_ENTRY.entry()}; {OTHER_ENTRY.entry()}",
    )
    runtime = Runtime.build(settings)
    await install_policies(runtime, policy())
    async with TestClient(TestServer(create_app(runtime))) as test_client:
        yield test_client
    await runtime.close()


def _runtime(client: TestClient[Any, Any]) -> Runtime:
    from bot.http.alerts import RUNTIME

    return client.server.app[RUNTIME]


async def test_an_answer_with_its_tool_calls_and_a_follow_up(client, ollama) -> None:
    ollama.script(
        Turn.calls(("policies_list", {})),
        Turn(content="One policy: restart-crashlooping-pod."),
        lambda request: Turn(content=f"You asked {len(request['messages'])} things so far."),
    )
    response = await client.post(
        "/api/v1/chat", json={"message": "Which policies?"}, headers=AS_CHAT
    )
    assert response.status == 200, await response.text()
    first = await response.json()
    assert first["answer"] == "One policy: restart-crashlooping-pod." and first["ok"] is True
    assert first["tool_calls"] == [{"name": "policies_list", "args": {}}]
    conversation = first["conversation"]
    response = await client.post(
        "/api/v1/chat",
        json={"message": "And again?", "conversation": conversation},
        headers=AS_CHAT,
    )
    second = await response.json()
    assert second["conversation"] == conversation
    # The model saw the first turn: system, question, tool call, tool result, answer, question.
    assert second["answer"] == "You asked 6 things so far."
    stored = await rows(
        _runtime(client),
        "SELECT DISTINCT conversation, \"user\" FROM chat_messages WHERE role = 'user'",
    )
    assert [(r["conversation"], r["user"]) for r in stored] == [
        (f"api:scripts:{conversation}", "api:scripts")
    ]


async def test_another_token_cannot_continue_someone_elses_conversation(client, ollama) -> None:
    ollama.script(Turn(content="secret plans"), lambda r: Turn(content=str(len(r["messages"]))))
    first = await (
        await client.post("/api/v1/chat", json={"message": "plan"}, headers=AS_CHAT)
    ).json()
    response = await client.post(
        "/api/v1/chat",
        json={"message": "what did we say?", "conversation": first["conversation"]},
        headers=AS_OTHER,
    )
    assert (await response.json())["answer"] == "2"  # system prompt and this question only


async def test_the_answer_streams_as_server_sent_events(client, ollama) -> None:
    ollama.script(Turn.calls(("policies_list", {})), Turn(content="Done."))
    response = await client.post(
        "/api/v1/chat",
        json={"message": "Which policies?"},
        headers={**AS_CHAT, "Accept": "text/event-stream"},
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for block in (await response.text()).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    names = [name for name, _ in events]
    assert names[0] == "conversation" and names[-1] == "answer"
    assert "progress" in names
    assert events[-1][1]["answer"] == "Done."


async def test_a_proposed_change_waits_for_a_person(client, ollama) -> None:
    scale = {"namespace": "prod", "deployment": "api", "replicas": 2}
    ollama.script(
        Turn.calls(("propose_action", {"action": "k8s.scale", "params": scale})),
        lambda request: Turn(content=json.loads(request["messages"][-1]["content"])["message"]),
    )
    response = await client.post(
        "/api/v1/chat", json={"message": "scale api to 2"}, headers=AS_CHAT
    )
    assert "awaits approval" in (await response.json())["answer"]
    runtime = _runtime(client)
    [proposal] = await rows(runtime, "SELECT * FROM proposals")
    assert proposal["status"] == "pending" and proposal["source"] == "chat"
    assert proposal["requested_by"] == "api:scripts"
    assert await rows(runtime, "SELECT id FROM job_logs") == []
    [note] = await rows(runtime, "SELECT kind, channel FROM notifications")
    assert (note["kind"], note["channel"]) == ("proposal", "C0OPS")  # to Slack, for a person


async def test_a_bad_request_is_refused_before_the_model(client, ollama) -> None:
    for body in ({}, {"message": ""}, {"message": "x", "conversation": "../etc"}, {"m": 1}):
        response = await client.post("/api/v1/chat", json=body, headers=AS_CHAT)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid"
    assert ollama.chats == []
