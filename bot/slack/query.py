"""`/infraai query` in Slack: the table as a channel message, the graph in its thread.

A slash command has no thread of its own, so the answer becomes one: the table is posted
to the channel (as `/infraai ask` posts the question) and the PNG is uploaded into that
message's thread. When the bot cannot post there (not invited, an outage), the caller
falls back to the ephemeral reply — the table, and a word about the graph.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn
from bot.slack.assistant import SLACK_FAULTS
from bot.slack.files import upload_png
from core.commands import QueryResult
from core.notifier import NotifierError

log = logging.getLogger(__name__)

SERIES_CHARS = 110
GRAPH_NEEDS_THE_BOT = "The graph goes in a thread of this channel once InfraAI may post here."

Message = tuple[str, list[dict[str, Any]]]


def query_message(
    reply: QueryResult, user: str | None = None, *, ephemeral: bool = False
) -> Message:
    """The table of values (code block, largest series first) and what was cut. The
    ephemeral fallback says where the graph would be."""
    head = mrkdwn.compose(
        *([mrkdwn.mention(user), " queried "] if user else ["Query "]),
        mrkdwn.Mrkdwn("`"),
        mrkdwn.escape(reply.expr.replace("`", "ˋ")[:500]),
        mrkdwn.Mrkdwn("`"),
    )
    width = max((len(value) for value, _ in reply.rows), default=5)
    lines = [f"{'VALUE'.ljust(width)}  SERIES"] + [
        f"{value.ljust(width)}  {_clip(series)}" for value, series in reply.rows
    ]
    if not reply.rows:
        lines = ["(no data: the expression matches no series now)"]
    shown = len(reply.rows)
    if reply.total > shown:
        lines.append(f"… {reply.total - shown} more series")
    notes = list(reply.notes)
    if ephemeral and reply.png is not None:
        notes.insert(0, GRAPH_NEEDS_THE_BOT)
    body = mrkdwn.compose(head, "\n", mrkdwn.code_block("\n".join(lines)))
    blocks: list[dict[str, Any]] = mrkdwn.sections(body)
    if notes:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": mrkdwn.cut(mrkdwn.escape(n), 500)} for n in notes[:5]
                ],
            }
        )
    fallback = mrkdwn.cut(
        mrkdwn.compose(f"{reply.expr}: ", ", ".join(v for v, _ in reply.rows[:5]) or "no data"),
        3000,
    )
    return fallback, blocks


def _clip(text: str) -> str:
    return text if len(text) <= SERIES_CHARS else text[: SERIES_CHARS - 1] + "…"


async def post_query(
    client: AsyncWebClient, *, channel: str, user: str, reply: QueryResult
) -> bool:
    """The table in the channel, the graph in its thread. False when the table could not be
    posted (the caller answers ephemerally instead)."""
    text, blocks = query_message(reply, user)
    try:
        root = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SLACK_FAULTS as exc:
        log.info("/infraai query: not posted in the channel: %s", type(exc).__name__)
        return False
    if reply.png is not None:
        try:
            await upload_png(
                client,
                channel=str(root.get("channel") or channel),
                thread_ts=str(root["ts"]),
                content=reply.png,
                filename=reply.filename,
                title=reply.title,
            )
        except NotifierError as exc:
            log.warning("/infraai query: graph not uploaded: %s", exc)
            await _say_in_thread(
                client, channel, str(root["ts"]), f"The graph could not be uploaded ({exc})."
            )
    return True


async def _say_in_thread(client: AsyncWebClient, channel: str, thread: str, text: str) -> None:
    try:
        await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=str(mrkdwn.escape(text))
        )
    except SLACK_FAULTS as exc:
        log.warning("/infraai query: notice not posted: %s", type(exc).__name__)
