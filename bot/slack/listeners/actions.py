"""Approve / Deny buttons: ack at once, then one decision per proposal, whatever the clicks.

A refusal (not an approver, too late) is an ephemeral message to the clicker; the channel's
message is updated through the outbox from the proposal's new state.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import sqlalchemy as sa
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn, payloads
from bot.slack.listeners.background import in_background
from core.approvals import DecisionOutcome
from core.db.models import Proposal
from core.runtime import Runtime
from core.text import Words, words

log = logging.getLogger(__name__)

GROUP_DECISIONS_AT_ONCE = 8


NOT_A_PROPOSAL = "That button does not name a proposal."
UNKNOWN_BUTTON = "That button is not one InfraAI knows."


async def _ephemeral(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    channel, user = payloads.click_channel(body), payloads.clicker(body)
    if channel is None or user is None:
        log.warning("a click without a channel or a user: nobody to answer")
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=mrkdwn.said(text))
    except Exception as exc:  # the decision stands; only the courtesy message is lost
        log.warning("ephemeral reply failed: %s", type(exc).__name__)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def decide_one(body: dict[str, Any], client: AsyncWebClient, approve: bool) -> None:
        user = payloads.clicker(body)
        proposal_id = payloads.proposal_id(payloads.action_value(body))
        if user is None:
            log.warning("a click without a user id: ignored")
            return
        if proposal_id is None:
            await _ephemeral(client, body, NOT_A_PROPOSAL)
            return
        outcome = await runtime.approvals.decide(proposal_id, user, approve)
        if runtime.drain is not None:
            runtime.drain.wake()
        if not outcome.ok:
            await _ephemeral(client, body, outcome.message)

    async def decide_group(body: dict[str, Any], client: AsyncWebClient, approve: bool) -> None:
        user = payloads.clicker(body)
        channel, ts = payloads.click_channel(body), payloads.click_message_ts(body)
        if user is None:
            log.warning("a click without a user id: ignored")
            return
        if channel is None or ts is None:
            await _ephemeral(client, body, "That button does not belong to a message.")
            return
        async with runtime.sessions() as session:
            ids = list(
                (
                    await session.scalars(
                        sa.select(Proposal.id)
                        .where(
                            Proposal.slack_channel == channel,
                            Proposal.slack_ts == ts,
                            Proposal.status == "pending",
                        )
                        .order_by(Proposal.id)
                    )
                ).all()
            )
        # Each decision is its own conditional update, so several may run at once (a storm's
        # approve-all is hundreds); SQLite has one writer, so there they go one by one.
        gate = asyncio.Semaphore(1 if runtime.settings.is_sqlite else GROUP_DECISIONS_AT_ONCE)

        async def decide(proposal_id: int) -> DecisionOutcome:
            async with gate:
                return await runtime.approvals.decide(proposal_id, user, approve)

        outcomes = await asyncio.gather(*(decide(proposal_id) for proposal_id in ids))
        done = sum(1 for outcome in outcomes if outcome.ok)
        refused = [outcome.message for outcome in outcomes if not outcome.ok]
        if runtime.drain is not None:
            runtime.drain.wake()
        verb = "approved" if approve else "denied"
        if refused or not ids:
            summary = f"{done} of {len(ids)} pending proposals {verb}."
            if not refused:
                await _ephemeral(client, body, summary)
                return
            first = refused[0]
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            parts = first.parts if isinstance(first, Words) else (first,)
            await _ephemeral(client, body, words(summary, " ", *parts, more))

    @app.action("proposal_approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        in_background(runtime, decide_one(body, client, True), "approve")

    @app.action("proposal_deny")
    async def deny(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        in_background(runtime, decide_one(body, client, False), "deny")

    @app.action("group_approve")
    async def approve_all(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        in_background(runtime, decide_group(body, client, True), "approve all")

    @app.action("group_deny")
    async def deny_all(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        in_background(runtime, decide_group(body, client, False), "deny all")

    # Registered last: any other button (an old message's, or a payload naming an action
    # InfraAI never wrote) gets an answer instead of Bolt's "unhandled request".
    @app.action(re.compile(".*"))
    async def unknown(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        in_background(runtime, _ephemeral(client, body, UNKNOWN_BUTTON), "unknown button")
