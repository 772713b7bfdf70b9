"""`/infraai scan` in a channel: a root message once the request is accepted, progress and
the summary in its thread.

A slash command has no thread of its own, so the scan makes one (as `/infraai ask` does).
A refused request never reaches `start`: its reason goes back to the person alone. If the
root message cannot be posted (the bot is not in the channel), the summary is the command's
ephemeral reply instead; a progress message that fails is logged and the scan goes on.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn
from bot.slack.assistant import SLACK_FAULTS
from bot.slack.render import render_reply
from core.commands import Reply

log = logging.getLogger(__name__)


class ThreadProgress:
    """core.discovery.scan.Progress, in a Slack thread."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str) -> None:
        self.client = client
        self.channel = channel
        self.user = user
        self.thread: str | None = None

    async def start(self, text: str) -> None:
        root = mrkdwn.compose(mrkdwn.mention(self.user), " asked for a scan: ", text)
        try:
            posted = await self.client.chat_postMessage(channel=self.channel, text=str(root))
        except SLACK_FAULTS as exc:
            log.warning("/infraai scan: root message not posted: %s", type(exc).__name__)
            return
        self.thread = str(posted["ts"])

    async def step(self, text: str) -> None:
        if self.thread is None:
            return
        try:
            await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread, text=str(mrkdwn.escape(text))
            )
        except SLACK_FAULTS as exc:
            log.warning("/infraai scan: progress not posted: %s", type(exc).__name__)

    async def finish(self, reply: Reply) -> bool:
        """The result in the thread; False when there is no thread or it cannot be posted
        (the caller answers with an ephemeral reply instead)."""
        if self.thread is None:
            return False
        text, blocks = render_reply(reply)
        try:
            await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread, text=text, blocks=blocks
            )
        except SLACK_FAULTS as exc:
            log.warning("/infraai scan: summary not posted: %s", type(exc).__name__)
            return False
        return True
