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
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn, payloads
from bot.slack.assistant import answer_in_thread
from bot.slack.listeners.background import in_background
from bot.slack.render import render_reply
from core.commands import COMMANDS, run_command
from core.runtime import Runtime

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def reply(event: dict[str, Any], say: AsyncSay, client: AsyncWebClient) -> None:
        raw = payloads.text_field(event, "text") or ""
        thread = payloads.text_field(event, "thread_ts") or payloads.text_field(event, "ts")
        channel = payloads.text_field(event, "channel")
        if thread is None or channel is None:
            log.warning("a mention without a channel or ts: nowhere to answer")
            return
        text = mrkdwn.unescape(_MENTION.sub("", raw)).strip()
        first = text.split(" ", 1)[0].lower() if text else "help"
        user = payloads.text_field(event, "user") or ""
        if first == "ask" or first not in COMMANDS:
            question = text.split(" ", 1)[1] if first == "ask" and " " in text else text
            await answer_in_thread(
                runtime,
                client,
                team=payloads.text_field(event, "team") or "-",
                channel=channel,
                thread=thread,
                user=user,
                question=question,
            )
            return
        reply = await run_command(runtime, user, text)
        body_text, blocks = render_reply(reply)
        try:
            await say(text=body_text, blocks=blocks, thread_ts=thread)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            # Not in the channel, an outage: the answer is lost, and one line says so.
            log.warning("mention reply not delivered: %s", type(exc).__name__)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay, client: AsyncWebClient) -> None:
        in_background(runtime, reply(event, say, client), "app_mention")

    @app.event("message")
    async def on_message(event: dict[str, Any], say: AsyncSay, client: AsyncWebClient) -> None:
        # Direct messages only (people's own: no edits, joins or bots' messages); channel
        # messages reach InfraAI as mentions.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        in_background(runtime, reply(event, say, client), "direct message")
