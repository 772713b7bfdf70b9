"""End to end on real PostgreSQL and Redis with the fake Slack: alert → message with buttons →
signed click → one job in Redis → message updated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis import Redis
from rq import Queue

from tests.helpers import count, crashloop, payload, policy, rows
from tests.stack import APPROVER, CHANNEL, REDIS_URL, STRANGER, Stack, make_stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(pg_db: str) -> AsyncIterator[Stack]:
    async for s in make_stack(pg_db, policy()):
        yield s


def queued_job_ids() -> list[str]:
    queue = Queue("infraai", connection=Redis.from_url(REDIS_URL))
    return list(queue.job_ids)


async def proposal_message(stack: Stack):
    return await stack.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )


async def test_alert_to_message_to_click_to_job(stack: Stack) -> None:
    assert await stack.post_alerts(payload(crashloop())) == {"received": 1, "proposals": 1}
    message = await proposal_message(stack)
    buttons = message.button_values()
    assert buttons == {"proposal_approve": "1", "proposal_deny": "1"}
    assert "prod/api-1" in message.all_text() and "KubePodCrashLooping" in message.all_text()

    response = await stack.click("proposal_approve", "1", message_ts=message.ts)
    assert response.status == 200
    await stack.slack.wait_for(
        lambda: "Approved" in stack.slack.message(CHANNEL, message.ts).all_text(), timeout=10
    )
    updated = stack.slack.message(CHANNEL, message.ts)
    assert updated.button_values() == {}
    assert f"<@{APPROVER}>" in updated.all_text()
    await stack.slack.wait_for(lambda: queued_job_ids() == ["proposal-1"], timeout=10)
    [proposal] = await rows(stack.runtime, "SELECT status, decided_by FROM proposals")
    assert proposal == {"status": "approved", "decided_by": APPROVER}
    assert await count(stack.runtime, "audit_events", "verb = 'proposal.approved'") == 1


async def test_a_stranger_is_refused_and_nothing_is_enqueued(stack: Stack) -> None:
    await stack.post_alerts(payload(crashloop()))
    message = await proposal_message(stack)
    await stack.click("proposal_approve", "1", user=STRANGER, message_ts=message.ts)
    ephemeral = await stack.slack.wait_for(
        lambda: next(iter(stack.slack.ephemerals(CHANNEL, STRANGER)), None), timeout=10
    )
    assert "may not approve proposal #1" in ephemeral.text
    assert queued_job_ids() == []
    assert await count(stack.runtime, "proposals", "status = 'pending'") == 1
    assert await count(stack.runtime, "audit_events", "verb = 'approval.refused'") == 1


async def test_user_group_approvers_are_resolved(pg_db: str) -> None:
    async for stack in make_stack(pg_db, policy(approvers=["S0PLATFORM"])):
        stack.slack.set_usergroup("S0PLATFORM", ["U0BOB"])
        await stack.post_alerts(payload(crashloop()))
        message = await proposal_message(stack)
        await stack.click("proposal_approve", "1", user="U0BOB", message_ts=message.ts)
        await stack.slack.wait_for(lambda: queued_job_ids() == ["proposal-1"], timeout=10)


@pytest.fixture
async def oncall_stack(pg_db: str) -> AsyncIterator[Stack]:
    """Approvers `U0ALICE,S0ONCALL`, the group holding U0BOB."""
    async for s in make_stack(pg_db, policy(), infraai_approvers=(APPROVER, "S0ONCALL")):
        s.slack.set_usergroup("S0ONCALL", ["U0BOB"])
        yield s


async def test_a_group_id_clicking_is_not_an_approver(oncall_stack: Stack) -> None:
    """A click whose user.id is a listed group's id is refused, audited and answered
    ephemerally; the job never runs."""
    stack = oncall_stack
    await stack.post_alerts(payload(crashloop()))
    message = await proposal_message(stack)
    response = await stack.click("proposal_approve", "1", user="S0ONCALL", message_ts=message.ts)
    assert response.status == 200
    ephemeral = await stack.slack.wait_for(
        lambda: next(iter(stack.slack.ephemerals(CHANNEL, "S0ONCALL")), None), timeout=10
    )
    assert "may not approve proposal #1" in ephemeral.text
    assert queued_job_ids() == []
    assert await count(stack.runtime, "proposals", "status = 'pending'") == 1
    [audit] = await rows(
        stack.runtime, "SELECT actor FROM audit_events WHERE verb = 'approval.refused'"
    )
    assert audit == {"actor": "S0ONCALL"}
    # A member of the group still approves.
    await stack.click("proposal_approve", "1", user="U0BOB", message_ts=message.ts)
    await stack.slack.wait_for(lambda: queued_job_ids() == ["proposal-1"], timeout=10)


async def test_fifty_concurrent_clicks_make_one_job(stack: Stack) -> None:
    await stack.post_alerts(payload(crashloop()))
    message = await proposal_message(stack)
    responses = await asyncio.gather(
        *(stack.click("proposal_approve", "1", message_ts=message.ts) for _ in range(50))
    )
    assert {r.status for r in responses} == {200}
    await stack.slack.wait_for(
        lambda: len(stack.slack.ephemerals(CHANNEL, APPROVER)) >= 49, timeout=15
    )
    assert queued_job_ids() == ["proposal-1"]
    assert await count(stack.runtime, "audit_events", "verb = 'proposal.approved'") == 1
    assert await count(stack.runtime, "audit_events", "verb = 'approval.too_late'") == 49


@pytest.mark.parametrize("state", ["denied", "superseded", "expired"])
async def test_late_clicks_are_refused_and_the_message_stays_consistent(
    stack: Stack, state: str
) -> None:
    await stack.post_alerts(payload(crashloop()))
    message = await proposal_message(stack)
    if state == "denied":
        await stack.click("proposal_deny", "1", message_ts=message.ts)
        expected = "already denied"
    elif state == "superseded":
        await stack.post_alerts(payload(crashloop(status="resolved")))
        expected = "resolved before approval"
    else:
        async with stack.runtime.sessions() as session, session.begin():
            from sqlalchemy import text

            await session.execute(
                text("UPDATE proposals SET expires_at = now() - interval '1 second'")
            )
        expected = "expired"
    await stack.slack.wait_for(
        lambda: stack.slack.message(CHANNEL, message.ts).button_values() == {}, timeout=10
    )
    await stack.click("proposal_approve", "1", user="U0ALICE", message_ts=message.ts)
    ephemeral = await stack.slack.wait_for(
        lambda: next(
            (e for e in stack.slack.ephemerals(CHANNEL, APPROVER) if "#1" in e.text), None
        ),
        timeout=10,
    )
    assert expected in ephemeral.text
    assert queued_job_ids() == []
    assert stack.slack.message(CHANNEL, message.ts).button_values() == {}
    [proposal] = await rows(stack.runtime, "SELECT status FROM proposals")
    assert proposal["status"] == state
