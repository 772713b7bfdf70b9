"""The assistant in a Slack thread: a placeholder at once, progress while it works, the answer
in its place.

A model turn takes seconds (a minute on a small machine): the thread shows "⏳ Thinking…"
as soon as the question is acked, the placeholder says what the assistant is doing before
each round of tool calls ("⏳ Looking at pods in prod…"), and it is replaced by the answer.
Every text goes through `mrkdwn`: the answer quotes outside text. If the placeholder cannot
be posted (not in the channel, an outage), the answer is posted when it is ready instead;
if that fails too, one log line says so.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn
from bot.slack.render import render_reply
from core.commands import run_command
from core.runtime import Runtime

log = logging.getLogger(__name__)

# What talking to Slack can raise: an API error, the network, and SlackRequestError, which
# files_upload_v2 raises when the upload POST itself is refused.
SLACK_FAULTS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)
THINKING = "⏳ Thinking…"


async def answer_in_thread(
    runtime: Runtime,
    client: AsyncWebClient,
    *,
    team: str,
    channel: str,
    thread: str,
    user: str,
    question: str,
) -> None:
    """Ask the assistant `question` in the conversation of (team, channel, thread)."""
    from core.agent.hook import ask_hook
    from core.agent.tools import ToolContext

    placeholder: str | None = None
    try:
        posted = await client.chat_postMessage(channel=channel, thread_ts=thread, text=THINKING)
        placeholder = str(posted["ts"])
    except SLACK_FAULTS as exc:
        log.warning("assistant placeholder not posted: %s", type(exc).__name__)

    async def progress(doing: str) -> None:
        if placeholder is not None:
            await client.chat_update(
                channel=channel, ts=placeholder, text=f"⏳ {mrkdwn.escape(doing)}"
            )

    context = ToolContext(
        user=user,
        conversation=f"{team}:{channel}:{thread}",
        channel=channel,
        thread_ts=thread,
        progress=progress,
    )
    reply = await run_command(runtime, user, f"ask {question}", ask=ask_hook(runtime, context))
    text, blocks = render_reply(reply)
    try:
        if placeholder is not None:
            await client.chat_update(channel=channel, ts=placeholder, text=text, blocks=blocks)
        else:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread, text=text, blocks=blocks
            )
    except SLACK_FAULTS as exc:
        log.warning("assistant answer not delivered: %s", type(exc).__name__)
    if runtime.drain is not None:
        runtime.drain.wake()  # a proposal it made goes out now


async def ask_at_the_root(
    runtime: Runtime,
    client: AsyncWebClient,
    *,
    team: str,
    channel: str,
    user: str,
    question: str,
) -> bool:
    """`/infraai ask`: the question as a root message of the channel, answered in its thread.
    False when the root message cannot be posted (the caller answers another way)."""
    root_text = mrkdwn.compose("❓ ", mrkdwn.mention(user), " asked: ", mrkdwn.escape(question))
    try:
        root = await client.chat_postMessage(channel=channel, text=str(root_text))
    except SLACK_FAULTS as exc:
        log.warning("/infraai ask: question not posted: %s", type(exc).__name__)
        return False
    await answer_in_thread(
        runtime,
        client,
        team=team,
        channel=channel,
        thread=str(root["ts"]),
        user=user,
        question=question,
    )
    return True
