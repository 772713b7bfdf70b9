"""`@infraai …` mentions: a command name runs that command in the thread; anything else goes
to the assistant when it is available."""

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


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def reply(event: dict[str, Any], say: AsyncSay) -> None:
        raw = payloads.text_field(event, "text") or ""
        thread = payloads.text_field(event, "thread_ts") or payloads.text_field(event, "ts")
        if thread is None or payloads.text_field(event, "channel") is None:
            log.warning("a mention without a channel or ts: nowhere to answer")
            return
        text = mrkdwn.unescape(_MENTION.sub("", raw)).strip()
        first = text.split(" ", 1)[0].lower() if text else "help"
        line = text if first in COMMANDS else f"ask {text}"
        reply = await run_command(runtime, payloads.text_field(event, "user") or "", line)
        body_text, blocks = render_reply(reply)
        try:
            await say(text=body_text, blocks=blocks, thread_ts=thread)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            # Not in the channel, an outage: the answer is lost, and one line says so.
            log.warning("mention reply not delivered: %s", type(exc).__name__)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        in_background(runtime, reply(event, say), "app_mention")
