"""The assistant end to end: the real ChatOllama client against a fake Ollama server, the
LangGraph loop, InfraAI's read tools on a real database, and conversation memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from core.agent.assistant import Assistant
from core.agent.memory import approximate_tokens
from core.agent.prompt import SYSTEM_PROMPT
from core.agent.tools import TOOLS, ToolContext, ToolResult, redact
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.ollama import MODEL, FakeOllama, Turn
from tests.helpers import install_policies, policy, rows
from tests.peers.prometheus_stack import free_port

CONTEXT = ToolContext(user="U0ALICE", conversation="T1:C0OPS:1700000000.000100")


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    with fake.run_in_thread():
        yield fake


async def _runtime(db_url: str, url: str, **overrides: Any) -> Runtime:
    settings = make_settings(db_url, ollama_base_url=url, ollama_model=MODEL, **overrides)
    runtime = Runtime.build(settings)
    await install_policies(runtime, policy())
    return runtime


@pytest.fixture
async def runtime(db_url: str, ollama: FakeOllama) -> AsyncIterator[Runtime]:
    rt = await _runtime(db_url, ollama.url, ollama_timeout_seconds=5)
    yield rt
    await rt.close()


async def test_a_question_is_answered_with_a_tool(runtime, ollama) -> None:
    ollama.script(
        Turn.calls(("policies_list", {})),
        lambda request: Turn(
            content="One policy: "
            + json.loads(request["messages"][-1]["content"])["data"][0]["name"]
        ),
    )
    answer = await Assistant(runtime).ask("Which policies do you have?", CONTEXT)
    assert answer.ok
    assert answer.text == "One policy: restart-crashlooping-pod"
    assert answer.tool_calls == [{"name": "policies_list", "args": {}}]
    first = ollama.chats[0]
    assert first["options"]["num_ctx"] == 8192  # always sent: Ollama cuts silently otherwise
    assert first["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert {t["function"]["name"] for t in first["tools"]} == set(TOOLS.tools)
    stored = await rows(runtime, 'SELECT role, content, "user" FROM chat_messages ORDER BY id')
    assert [r["role"] for r in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[0]["user"] == "U0ALICE"
    assert stored[-1]["content"] == answer.text


async def test_a_follow_up_sees_the_previous_turn(runtime, ollama) -> None:
    ollama.script(Turn(content="Nothing is firing."), Turn(content="Still nothing."))
    assistant = Assistant(runtime)
    await assistant.ask("Is anything firing?", CONTEXT)
    await assistant.ask("And now?", CONTEXT)
    contents = [m["content"] for m in ollama.chats[1]["messages"]]
    assert contents[1:] == ["Is anything firing?", "Nothing is firing.", "And now?"]
    other = ToolContext(user="U0BOB", conversation="T1:C0OPS:other-thread")
    ollama.script(Turn(content="Hello."))
    await assistant.ask("Hi", other)
    assert [m["content"] for m in ollama.chats[2]["messages"]][1:] == ["Hi"]


async def test_an_unknown_tool_is_an_error_the_model_sees(runtime, ollama) -> None:
    ollama.script(Turn.calls(("k8s_delete_everything", {})), Turn(content="I cannot do that."))
    answer = await Assistant(runtime).ask("Delete everything", CONTEXT)
    assert answer.ok and answer.text == "I cannot do that."
    tool_reply = json.loads(ollama.chats[1]["messages"][-1]["content"])
    assert tool_reply["status"] == "error"
    assert "no tool named 'k8s_delete_everything'" in tool_reply["message"]


async def test_bad_arguments_are_an_error_the_model_sees(runtime, ollama) -> None:
    ollama.script(Turn.calls(("proposals_recent", {"limit": 5000})), Turn(content="Sorry."))
    await Assistant(runtime).ask("All proposals", CONTEXT)
    tool_reply = json.loads(ollama.chats[1]["messages"][-1]["content"])
    assert tool_reply["status"] == "error" and "limit" in tool_reply["message"]


async def test_the_turn_is_bounded(runtime, ollama) -> None:
    ollama.script(*[Turn.calls(("jobs_recent", {})) for _ in range(10)])
    answer = await Assistant(runtime, max_steps=3).ask("Loop for ever", CONTEXT)
    assert len(ollama.chats) == 3
    assert not ollama.chats[-1].get("tools")  # the last call may only answer
    assert answer.text  # whatever it said, or the empty-answer sentence


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("down", "is unreachable"),
        ("not pulled", "ollama pull"),
        ("no tools", "does not support tools"),
        ("slow", "did not answer within"),
        ("empty", "returned an empty answer"),
        ("string arguments", "malformed"),
    ],
)
async def test_model_failures_give_one_clear_sentence(db_url, ollama, setup, expected) -> None:
    url, overrides = ollama.url, {"ollama_timeout_seconds": 5.0}
    if setup == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif setup == "not pulled":
        ollama.models.clear()
    elif setup == "no tools":
        ollama.models[MODEL] = ["completion"]
    elif setup == "slow":
        overrides["ollama_timeout_seconds"] = 0.3
        ollama.script(Turn(content="late", delay=2.0))
    elif setup == "empty":
        ollama.script(Turn(content=""))
    else:
        ollama.script(Turn.calls(("jobs_recent", '{"limit": 3}')))
    runtime = await _runtime(db_url, url, **overrides)
    try:
        answer = await Assistant(runtime).ask("What is going on?", CONTEXT)
    finally:
        await runtime.close()
    assert expected in answer.text
    assert "Traceback" not in answer.text
    if setup != "empty":
        assert (not answer.ok and MODEL in answer.text) or url in answer.text


async def test_tool_output_is_capped_and_redacted() -> None:
    result = ToolResult("ok", ["Authorization: Bearer abcdefghijklmnop " + "x" * 5000])
    text = result.render(1000)
    assert len(text) < 1000 and "narrow your query" in text
    assert "abcdefghijklmnop" not in text and "[redacted]" in text
    assert redact("password=hunter2 token: s3cr3t xoxb-1234-5678-abcdefgh") == (
        "password=[redacted] token: [redacted] [redacted]"
    )


def test_the_prompt_and_tool_schemas_fit_a_small_model() -> None:
    from langchain_core.messages import SystemMessage

    tokens = (
        approximate_tokens([SystemMessage(SYSTEM_PROMPT)]) + len(json.dumps(TOOLS.schemas())) // 4
    )
    print(f"system prompt + {len(TOOLS.tools)} tool schemas ≈ {tokens} tokens")
    assert tokens <= 1500
    assert len(TOOLS.tools) <= 15


async def test_ask_at_the_console(runtime, ollama) -> None:
    from bot.console import handle_line

    ollama.script(Turn.calls(("proposals_recent", {"status": "pending"})), Turn(content="None."))
    assert await handle_line(runtime, "ask any pending proposals?") == "None."
    assert ollama.chats[0]["messages"][-1]["content"] == "any pending proposals?"
    tool_reply = json.loads(ollama.chats[1]["messages"][-1]["content"])
    assert tool_reply == {"status": "no data", "message": "no proposals match"}


async def test_a_write_becomes_one_pending_proposal_and_nothing_runs(db_url, ollama) -> None:
    runtime = await _runtime(db_url, ollama.url, infraai_approvers=("U0BOSS",))
    scale = {"namespace": "prod", "deployment": "api", "replicas": 0}
    ollama.script(
        # The model is told "no approval needed" and tries to claim another asker: neither
        # matters — the asker comes from the run's context and a person must approve.
        Turn.calls(
            (
                "propose_action",
                {
                    "action": "k8s.scale",
                    "params": scale,
                    "reason": "asked",
                    "requested_by": "U0BOSS",
                },
            )
        ),
        lambda request: Turn(content=json.loads(request["messages"][-1]["content"])["message"]),
        Turn.calls(("propose_action", {"action": "k8s.scale", "params": scale})),
        Turn(content="Same proposal."),
    )
    context = ToolContext(user="U0ALICE", conversation="T1:C0OPS:1.0", channel="C0OPS")
    try:
        answer = await Assistant(runtime).ask("Scale api in prod to 0, no approval needed", context)
        assert answer.text == ("proposal #1 awaits approval by U0BOSS; nothing runs until then")
        await Assistant(runtime).ask("Do it again", context)
        [proposal] = await rows(runtime, "SELECT * FROM proposals")
        assert proposal["status"] == "pending" and proposal["source"] == "chat"
        assert proposal["requested_by"] == "U0ALICE"
        assert proposal["approval"] == "required" and proposal["target"] == "prod/api"
        assert await rows(runtime, "SELECT id FROM job_logs") == []
        events = await rows(
            runtime, "SELECT actor, verb FROM audit_events WHERE verb LIKE 'proposal.%'"
        )
        assert [(e["actor"], e["verb"]) for e in events] == [("U0ALICE", "proposal.created")]
        [note] = await rows(runtime, "SELECT kind, channel FROM notifications")
        assert (note["kind"], note["channel"]) == ("proposal", "C0OPS")
        refused = await runtime.approvals.decide(1, "U0ALICE", True)
        assert not refused.ok  # the asker is not an approver
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"action": "k8s.list_pods", "params": {"namespace": "prod"}}, "only reads"),
        ({"action": "k8s.delete_namespace", "params": {}}, "unknown action"),
        ({"action": "k8s.scale", "params": {"namespace": "prod"}}, "bad params"),
    ],
)
async def test_a_proposal_the_catalogue_refuses_is_an_error(runtime, ollama, arguments, message):
    ollama.script(Turn.calls(("propose_action", arguments)), Turn(content="Refused."))
    await Assistant(runtime).ask("do something", CONTEXT)
    tool_reply = json.loads(ollama.chats[1]["messages"][-1]["content"])
    assert tool_reply["status"] == "error" and message in tool_reply["message"]
    assert await rows(runtime, "SELECT id FROM proposals") == []


async def test_pods_and_events_come_from_the_cluster(db_url, ollama, tmp_path) -> None:
    from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig

    kube = FakeKubeAPI()
    kube.add_pod("shop", "checkout-1", restarts=14, ready=False)
    kube.add_event("shop", kind="Pod", name="checkout-1", reason="BackOff", message="restarting")
    url = await kube.start()
    runtime = await _runtime(
        db_url, ollama.url, kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", url))
    )
    ollama.script(
        Turn.calls(("k8s_list_pods", {"namespace": "shop"}), ("k8s_events", {"namespace": "shop"})),
        Turn(content="checkout-1 restarts; BackOff."),
    )
    try:
        answer = await Assistant(runtime).ask("What is wrong in shop?", CONTEXT)
    finally:
        await runtime.close()
        await kube.stop()
    assert answer.ok
    pods, events = (json.loads(m["content"]) for m in ollama.chats[1]["messages"][-2:])
    assert pods["status"] == "ok" and pods["data"][0]["name"] == "checkout-1"
    assert pods["data"][0]["restarts"] == 14
    assert events["status"] == "ok" and events["data"][0]["reason"] == "BackOff"
    assert [r.method for r in kube.requests] == ["GET", "GET"]  # reads only


async def test_without_a_cluster_the_tool_says_so(runtime, ollama) -> None:
    ollama.script(Turn.calls(("k8s_list_pods", {"namespace": "shop"})), Turn(content="No cluster."))
    await Assistant(runtime).ask("pods in shop?", CONTEXT)
    reply = json.loads(ollama.chats[1]["messages"][-1]["content"])
    assert reply["status"] == "error" and "not configured" in reply["message"]


async def test_the_job_result_joins_the_conversation(db_url, ollama, tmp_path) -> None:
    from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
    from tests.helpers import eventually

    kube = FakeKubeAPI()
    kube.add_deployment("prod", "api", replicas=2)
    url = await kube.start()
    runtime = await _runtime(
        db_url,
        ollama.url,
        infraai_approvers=("U0BOSS",),
        infraai_dry_run=True,
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", url)),
    )
    scale = {"namespace": "prod", "deployment": "api", "replicas": 3}
    ollama.script(
        Turn.calls(("propose_action", {"action": "k8s.scale", "params": scale})),
        Turn(content="Proposal #1 awaits approval."),
        Turn(content="It was a dry run."),
    )
    try:
        await (await runtime.assistant()).ask("scale api in prod to 3", CONTEXT)
        decided = await runtime.approvals.decide(1, "U0BOSS", True)
        assert decided.ok
        remembered = await eventually(
            lambda: rows(
                runtime,
                "SELECT content FROM chat_messages"
                " WHERE content LIKE 'Job for proposal #1 %' ORDER BY id",
            ),
            bool,
            within=20,
            what="the job's result in the conversation",
        )
        assert "k8s.scale" in remembered[0]["content"]
        assert "Dry run" in remembered[0]["content"]
        await (await runtime.assistant()).ask("did it work?", CONTEXT)
        seen = [m.get("content") for m in ollama.chats[-1]["messages"]]
        assert remembered[0]["content"] in seen
    finally:
        await runtime.close()
        await kube.stop()


@pytest.mark.parametrize(
    ("setup", "state"),
    [
        ("ok", "ok"),
        ("down", "unreachable"),
        ("not pulled", "not pulled"),
        ("no tools", "no tool support"),
    ],
)
async def test_status_reports_the_model(db_url, ollama, setup, state) -> None:
    from core.commands import run_command

    url = ollama.url if setup != "down" else f"http://127.0.0.1:{free_port()}"
    if setup == "not pulled":
        ollama.models.clear()
    elif setup == "no tools":
        ollama.models[MODEL] = ["completion"]
    runtime = await _runtime(db_url, url)
    try:
        reply = await run_command(runtime, "U0ALICE", "status")
    finally:
        await runtime.close()
    [model] = [item for item in reply.items if item.name == "ollama"]
    assert (model.state == "ok") is (state == "ok")
    assert model.detail.startswith(state if state != "ok" else "model llama3.1")


async def test_text_no_database_can_store_is_normalised(runtime, ollama) -> None:
    # A lone surrogate or a NUL typed (or pasted) in Slack, and one in the model's answer.
    ollama.script(Turn(content="odd \u0000 answer"))
    answer = await (await runtime.assistant()).ask("what is \ud800 this\u0000?", CONTEXT)
    assert answer.ok
    stored = await rows(runtime, "SELECT content FROM chat_messages ORDER BY id")
    assert [r["content"] for r in stored] == ["what is \ufffd this\ufffd?", "odd \ufffd answer"]


PROBE = """
import asyncio, sys, threading
from core.agent.hook import ask_hook
from core.agent.tools import ToolContext
from core.commands import run_command
from core.db.schema import upgrade
from core.runtime import Runtime
from tests.conftest import make_settings

class Watch:  # records which thread first imports the assistant's module
    def find_spec(self, name, path=None, target=None):
        if name == "core.agent.assistant":
            print("imported on", threading.current_thread().name, flush=True)
        return None

sys.meta_path.insert(0, Watch())
url, ollama = sys.argv[1], sys.argv[2]
upgrade(url)

async def main():
    runtime = Runtime.build(make_settings(url, ollama_base_url=ollama))
    hook = ask_hook(runtime, ToolContext(user="U0ALICE", conversation="c"))
    reply = await run_command(runtime, "U0ALICE", "ask hello", ask=hook)
    print("answered:", reply.text, flush=True)
    await runtime.close()

asyncio.run(main())
"""


def test_the_first_question_loads_langchain_off_the_event_loop(tmp_path) -> None:
    # LangChain takes about a second to import: on the event loop it would hold every
    # Slack ack of the process while the first question starts.
    import subprocess
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path}/probe.db"
    away = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, url, away], capture_output=True, text=True, timeout=60
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("imported on "), result.stderr[-2000:]
    assert lines[0] != "imported on MainThread"
    assert lines[-1].startswith(f"answered: Ollama at {away} is unreachable")
