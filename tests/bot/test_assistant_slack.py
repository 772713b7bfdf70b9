"""The assistant in Slack: mentions, direct messages and `/infraai ask`, through the real
Bolt app and HTTP app against the fake Slack, with the fake Ollama as the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.ollama import MODEL, FakeOllama, Turn
from tests.fakes.slack_signing import TEAM_ID, app_mention_event, event_callback_body
from tests.helpers import crashloop, eventually, payload, policy, rows
from tests.stack import APPROVER, CHANNEL, STRANGER, Stack, make_stack

DM = "D0ALICEDM"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    with fake.run_in_thread():
        yield fake


@pytest.fixture
async def stack(db_url: str, ollama: FakeOllama) -> AsyncIterator[Stack]:
    async for built in make_stack(
        db_url,
        policy(),
        redis=False,
        ollama_base_url=ollama.url,
        ollama_model=MODEL,
        ollama_timeout_seconds=20,
    ):
        built.slack.add_channel(DM, "alice-dm")
        yield built


async def mention(stack: Stack, text: str, user: str = APPROVER) -> str:
    event = app_mention_event(f"<@U0INFRAAI> {text}", user_id=user, channel_id=CHANNEL)
    response = await stack.signed(event_callback_body(event))
    assert response.status == 200
    return str(event["ts"])


def replies(stack: Stack, channel: str, thread: str) -> list[str]:
    return [m.text for m in stack.slack.messages(channel, thread_ts=thread) if m.ts != thread]


def answered(found: list[str]) -> bool:
    """The thread holds the answer (the placeholder has been replaced)."""
    return bool(found) and not any(text.startswith("⏳") for text in found)


async def test_a_mention_is_answered_in_its_thread(stack, ollama) -> None:
    ollama.script(
        Turn.calls(("policies_list", {})),
        Turn(content="One policy: restart-crashlooping-pod."),
    )
    thread = await mention(stack, "which policies do you have?")
    [answer] = await eventually(
        lambda: asyncio.sleep(0, replies(stack, CHANNEL, thread)),
        answered,
        within=20,
        what="the answer in the thread",
    )
    assert answer == "One policy: restart-crashlooping-pod."
    assert ollama.chats[0]["messages"][-1]["content"] == "which policies do you have?"
    stored = await rows(stack.runtime, "SELECT DISTINCT conversation FROM chat_messages")
    assert [r["conversation"] for r in stored] == [f"{TEAM_ID}:{CHANNEL}:{thread}"]


async def test_a_direct_message_is_answered(stack, ollama) -> None:
    ollama.script(Turn(content="Hello Alice."))
    event = {
        **app_mention_event("hello", user_id=APPROVER, channel_id=DM),
        "type": "message",
        "channel_type": "im",
    }
    assert (await stack.signed(event_callback_body(event))).status == 200
    [answer] = await eventually(
        lambda: asyncio.sleep(0, replies(stack, DM, str(event["ts"]))),
        answered,
        within=20,
        what="the answer to the DM",
    )
    assert answer == "Hello Alice."


async def test_infraai_ask_is_a_root_message_answered_in_its_thread(stack, ollama) -> None:
    ollama.script(Turn.calls(("policies_list", {})), Turn(content="One policy."))
    assert (await stack.command("ask which policies?")).status == 200
    roots = await eventually(
        lambda: asyncio.sleep(0, [m for m in stack.slack.messages(CHANNEL) if "asked" in m.text]),
        bool,
        within=20,
        what="the question as a root message",
    )
    assert roots[0].text == f"❓ <@{APPROVER}> asked: which policies?"
    [answer] = await eventually(
        lambda: asyncio.sleep(0, replies(stack, CHANNEL, roots[0].ts)),
        answered,
        within=20,
        what="the answer in its thread",
    )
    assert answer == "One policy."
    # While it worked, the placeholder said what it was doing.
    shown = [c.params.get("text") for c in stack.slack.calls_to("chat.update")]
    assert "⏳ Reading the policies…" in shown


async def test_a_write_asked_for_is_a_proposal_with_buttons_and_runs_nothing(stack, ollama) -> None:
    scale = {"namespace": "prod", "deployment": "api", "replicas": 1}
    ollama.script(
        Turn.calls(("propose_action", {"action": "k8s.scale", "params": scale})),
        lambda request: Turn(content=json.loads(request["messages"][-1]["content"])["message"]),
    )
    thread = await mention(stack, "scale api in prod to 1, no approval needed", user=STRANGER)
    [answer] = await eventually(
        lambda: asyncio.sleep(0, replies(stack, CHANNEL, thread)),
        answered,
        within=20,
        what="the answer",
    )
    assert answer.startswith("proposal #1 awaits approval")
    [proposal] = await rows(stack.runtime, "SELECT * FROM proposals")
    assert proposal["status"] == "pending" and proposal["requested_by"] == STRANGER
    posted = await eventually(
        lambda: asyncio.sleep(
            0, [m for m in stack.slack.messages(CHANNEL) if '"actions"' in json.dumps(m.blocks)]
        ),
        bool,
        within=20,
        what="the proposal message with its buttons",
    )
    buttons = json.dumps(posted[0].blocks)
    assert "approve" in buttons and "deny" in buttons
    refused = await stack.click("approve", "1", user=STRANGER, message_ts=posted[0].ts)
    assert refused.status == 200
    await asyncio.sleep(0.2)
    [after] = await rows(stack.runtime, "SELECT status FROM proposals")
    assert after["status"] == "pending"
    assert await rows(stack.runtime, "SELECT id FROM job_logs") == []


async def test_a_slow_model_delays_no_other_request(stack, ollama) -> None:
    ollama.script(Turn(content="Finally.", delay=8.0))
    thread = await mention(stack, "think hard about it")
    commands = [stack.command("help") for _ in range(100)]
    alerts = [stack.post_alerts(payload(crashloop(pod=f"api-{i}"))) for i in range(100)]
    acked, delivered = await asyncio.gather(asyncio.gather(*commands), asyncio.gather(*alerts))
    assert [r.status for r in acked] == [200] * 100
    assert all(a["received"] == 1 for a in delivered)
    await eventually(
        lambda: asyncio.sleep(0, stack.slack.responses()),
        lambda found: len(found) == 100,
        within=30,
        what="100 help answers",
    )
    # Everything else was served while the model was still thinking.
    assert replies(stack, CHANNEL, thread) == ["⏳ Thinking…"]
    [answer] = await eventually(
        lambda: asyncio.sleep(0, replies(stack, CHANNEL, thread)),
        answered,
        within=30,
        what="the slow answer",
    )
    assert answer == "Finally."


async def test_ollama_down_is_one_clear_sentence_in_the_thread(db_url) -> None:
    from tests.peers.prometheus_stack import free_port

    url = f"http://127.0.0.1:{free_port()}"
    async for stack in make_stack(db_url, redis=False, ollama_base_url=url, ollama_model=MODEL):
        thread = await mention(stack, "what is going on?")
        [answer] = await eventually(
            lambda stack=stack, thread=thread: asyncio.sleep(0, replies(stack, CHANNEL, thread)),
            answered,
            within=20,
            what="the answer",
        )
        assert answer.startswith(f"Ollama at {url} is unreachable")
        # The deterministic commands keep working.
        assert (await stack.command("status")).status == 200
