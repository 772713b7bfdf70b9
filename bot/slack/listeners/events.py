"""`@infraai …` mentions and direct messages: a command name runs that command in the
thread; anything else goes to the assistant, in that thread's conversation.

The reply runs after the ack (in the background), so a slow model delays no other request.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncSay
from slack_sdk.errors import SlackApiError

from bot.slack import mrkdwn, payloads
from bot.slack.listeners.background import in_background
from bot.slack.render import render_reply
from core.commands import COMMANDS, run_command
from core.runtime import Runtime

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+>")


def _ask(runtime: Runtime, event: dict[str, Any], channel: str, thread: str) -> Any:
    from core.agent.assistant import ask_hook  # LangChain loads on the first question
    from core.agent.tools import ToolContext

    team = payloads.text_field(event, "team") or "-"
    context = ToolContext(
        user=payloads.text_field(event, "user") or "",
        conversation=f"{team}:{channel}:{thread}",
        channel=channel,
        thread_ts=thread,
    )
    return ask_hook(runtime, context)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def reply(event: dict[str, Any], say: AsyncSay) -> None:
        raw = payloads.text_field(event, "text") or ""
        thread = payloads.text_field(event, "thread_ts") or payloads.text_field(event, "ts")
        channel = payloads.text_field(event, "channel")
        if thread is None or channel is None:
            log.warning("a mention without a channel or ts: nowhere to answer")
            return
        text = mrkdwn.unescape(_MENTION.sub("", raw)).strip()
        first = text.split(" ", 1)[0].lower() if text else "help"
        line = text if first in COMMANDS else f"ask {text}"
        ask = _ask(runtime, event, channel, thread) if line.startswith("ask ") else None
        user = payloads.text_field(event, "user") or ""
        reply = await run_command(runtime, user, line, ask=ask)
        body_text, blocks = render_reply(reply)
        try:
            await say(text=body_text, blocks=blocks, thread_ts=thread)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            # Not in the channel, an outage: the answer is lost, and one line says so.
            log.warning("mention reply not delivered: %s", type(exc).__name__)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        in_background(runtime, reply(event, say), "app_mention")

    @app.event("message")
    async def on_message(event: dict[str, Any], say: AsyncSay) -> None:
        # Direct messages only (people's own: no edits, joins or bots' messages); channel
        # messages reach InfraAI as mentions.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        in_background(runtime, reply(event, say), "direct message")
