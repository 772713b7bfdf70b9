"""Nothing from outside reaches Slack as live markup, on any route.

Slack reads `<!channel>`, `<!here>`, `<@U…>` and `<http://…|label>` in any mrkdwn text (and in
a message's fallback `text`, which drives notifications). Values from alerts, job results,
worker names, configuration and what people typed must arrive escaped (`&lt;!channel&gt;`),
whichever route carries them: the proposal message, a job result or worker-lost notice in its
thread, an expiry notice, a command reply, a mention reply, an ephemeral refusal.

Runs the whole bot (HTTP app, Bolt, outbox drain, in-process dry-run execution) on SQLite
against the fake Slack; what is checked is exactly what the fake received.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db.models import JobLog, Proposal
from core.db.types import utcnow
from tests.fakes.slack import Message
from tests.fakes.slack_signing import app_mention_event, event_callback_body, slash_command_body
from tests.helpers import alert, install_policies, payload, policy
from tests.stack import APPROVER, CHANNEL, STRANGER, Stack, make_stack

# Live markup an attacker would like Slack to act on. A VM name may hold any of it (no `/`).
HOSTILE = "<!channel> <!here> <@U0EVIL> <!subteam^S0EVIL>"
LIVE = ("<!channel>", "<!here>", "<@U0EVIL>", "<!subteam^S0EVIL>", "<https://evil")
ESCAPED = "&lt;!channel&gt;"

VM_POLICY = {
    "name": "reset-stuck-vm",
    "matchers": ['alertname="VMStuck"'],
    "action": "vsphere.reset_vm",
    "params": {"vm": "{{ labels.vm }}"},
}


def texts(node: Any) -> list[str]:
    """Every string Slack renders as text: `text` fields at any depth (blocks, elements)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(texts(item))
    return found


def assert_inert(shown: Iterable[str], *, expect_escaped: bool = True) -> None:
    """No live hostile markup anywhere; the hostile value did arrive, escaped."""
    joined = "\n".join(shown)
    for token in LIVE:
        assert token not in joined, f"{token!r} reached Slack live:\n{joined[:2000]}"
    if expect_escaped:
        assert ESCAPED in joined, joined[:2000]
        # And a person reads exactly what was sent.
        assert "<!channel>" in html.unescape(joined)


def message_texts(message: Message) -> list[str]:
    return [message.text, *texts(message.blocks or [])]


@pytest.fixture
async def stack(sqlite_db: str) -> AsyncIterator[Stack]:
    async for s in make_stack(
        sqlite_db,
        policy(),
        redis=False,
        infraai_dry_run=True,
        infraai_approvers=(APPROVER, "U0X<!channel>"),
    ):
        await install_policies(s.runtime, policy(**VM_POLICY))
        yield s


def vm_alert(vm: str = HOSTILE) -> dict[str, Any]:
    return alert(
        {"alertname": "VMStuck", "vm": vm, "severity": "critical", "team": HOSTILE},
        annotations={"summary": f"{HOSTILE} is stuck", "description": HOSTILE},
    )


async def proposal_message(stack: Stack) -> Message:
    return await stack.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )


async def thread_replies(stack: Stack, parent: Message, containing: str) -> Message:
    return await stack.slack.wait_for_message(
        CHANNEL,
        lambda m: m.thread_ts == parent.ts and m.ts != parent.ts and containing in m.text,
        timeout=10,
    )


async def test_the_proposal_message_escapes_alert_values(stack: Stack) -> None:
    await stack.post_alerts(payload(vm_alert()))
    message = await proposal_message(stack)
    assert_inert(message_texts(message))


async def test_a_job_result_in_the_thread_escapes_the_vm_name(stack: Stack) -> None:
    await stack.post_alerts(payload(vm_alert()))
    message = await proposal_message(stack)
    await stack.click("proposal_approve", message.button_values()["proposal_approve"])
    result = await thread_replies(stack, message, "Dry run")
    assert_inert(message_texts(result))


async def test_a_worker_lost_notice_escapes_the_worker_name(stack: Stack) -> None:
    await stack.post_alerts(payload(vm_alert("vm-01")))
    message = await proposal_message(stack)
    long_ago = utcnow() - timedelta(hours=1)
    async with stack.runtime.sessions() as session, session.begin():
        await session.execute(sa.update(Proposal).values(status="running"))
        proposal_id = await session.scalar(sa.select(Proposal.id))
        session.add(
            JobLog(
                proposal_id=proposal_id,
                rq_job_id=f"proposal-{proposal_id}",
                status="running",
                started_at=long_ago,
                heartbeat_at=long_ago,
                worker_name=HOSTILE,
            )
        )
    # The maintenance sweep (every 0.2 s in the stack) finds the stale heartbeat.
    notice = await thread_replies(stack, message, "worker lost")
    assert_inert(message_texts(notice))


async def test_an_expiry_notice_and_the_expired_message_stay_inert(stack: Stack) -> None:
    await stack.post_alerts(payload(vm_alert()))
    message = await proposal_message(stack)
    async with stack.runtime.sessions() as session, session.begin():
        await session.execute(
            sa.update(Proposal).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    notice = await thread_replies(stack, message, "Expired")
    assert_inert(message_texts(notice), expect_escaped=False)
    updated = await stack.slack.wait_for(
        lambda: (m := stack.slack.message(CHANNEL, message.ts)) and not m.button_values() and m,
        timeout=10,
    )
    assert_inert(message_texts(updated))


async def test_an_ephemeral_refusal_escapes_the_approver_list(stack: Stack) -> None:
    await stack.post_alerts(payload(vm_alert("vm-01")))
    message = await proposal_message(stack)
    await stack.click("proposal_approve", "1", user=STRANGER, message_ts=message.ts)
    refusal = await stack.slack.wait_for(
        lambda: next(iter(stack.slack.ephemerals(CHANNEL, STRANGER)), None), timeout=10
    )
    assert "may not approve" in refusal.text
    assert_inert([refusal.text, *texts(refusal.blocks or [])])


async def command_reply(stack: Stack, text: str) -> list[str]:
    url = stack.slack.new_response_url(CHANNEL)
    response = await stack.signed(slash_command_body(text, channel_id=CHANNEL, response_url=url))
    assert response.status == 200
    [post] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=10)
    return [str(post.body.get("text") or ""), *texts(post.body.get("blocks") or [])]


# What a person types arrives from Slack escaped; the reply must not turn it back into markup.
TYPED = "&lt;!channel&gt; &lt;!here&gt; &lt;@U0EVIL&gt; &lt;!subteam^S0EVIL&gt;"
ONE_WORD = TYPED.replace(" ", "_")


@pytest.mark.parametrize(
    "command",
    [
        f"policy test alertname={ONE_WORD}",
        "policy test alertname=VMStuck vm=&lt;!channel&gt;",
        f"policy show {ONE_WORD}",
        f"policy {ONE_WORD}",
        f"proposals {TYPED}",
        f"jobs {TYPED}",
        ONE_WORD,
    ],
)
async def test_command_replies_escape_what_was_typed(stack: Stack, command: str) -> None:
    assert_inert(await command_reply(stack, command))


async def test_a_policy_shown_as_yaml_escapes_its_description(stack: Stack) -> None:
    await install_policies(stack.runtime, policy(**VM_POLICY, description=HOSTILE))
    assert_inert(await command_reply(stack, "policy show reset-stuck-vm"))


async def test_a_mention_reply_in_the_thread_escapes_what_was_typed(stack: Stack) -> None:
    ts = "1700000100.000100"
    body = event_callback_body(
        app_mention_event(
            f"<@U0FAKEBOT> policy test alertname=VMStuck vm={ONE_WORD}",
            channel_id=CHANNEL,
            ts=ts,
        )
    )
    assert (await stack.signed(body)).status == 200
    reply = await stack.slack.wait_for_message(CHANNEL, lambda m: m.thread_ts == ts, timeout=10)
    assert_inert(message_texts(reply))
