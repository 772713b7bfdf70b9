"""The Notifier port for Slack: Block Kit messages through the Web API.

Errors become `NotifierError` (429 → retry after `Retry-After`; 5xx and network faults →
back off; a channel that does not exist → permanent), and the outbox decides when to try
again — nothing here sleeps, so one slow channel never holds up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks, mrkdwn
from core.cards import ProposalCard
from core.notifier import MessageRef, NotifierError

PERMANENT_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "no_permission",
    "missing_scope",
    "msg_too_long",
    "invalid_arguments",
    "message_not_found",
    "cant_update_message",
    "restricted_action",
}


def _now() -> datetime:
    return datetime.now(UTC)


class SlackNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if status == 429 or error == "ratelimited":
                retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
                raise NotifierError(f"{method}: rate limited", retry_after=retry_after) from None
            raise NotifierError(
                f"{method}: {error or status}", permanent=error in PERMANENT_ERRORS
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NotifierError(f"{method}: {type(exc).__name__}: {exc}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _post(
        self, channel: str, message: tuple[str, list[dict[str, Any]]], thread_ts: str | None = None
    ) -> MessageRef:
        text, body = message
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "blocks": body}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = await self._call("chat.postMessage", **kwargs)
        return MessageRef(str(data.get("channel", channel)), str(data["ts"]))

    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef:
        return await self._post(channel, blocks.proposal_message(card, _now()))

    async def update_proposal(self, card: ProposalCard, ref: MessageRef) -> None:
        text, body = blocks.proposal_message(card, _now())
        await self._call("chat.update", channel=ref.channel, ts=ref.ts, text=text, blocks=body)

    async def post_group(self, cards: Sequence[ProposalCard], channel: str) -> MessageRef:
        return await self._post(channel, blocks.group_message(cards, _now()))

    async def update_group(self, cards: Sequence[ProposalCard], ref: MessageRef) -> None:
        text, body = blocks.group_message(cards, _now())
        await self._call("chat.update", channel=ref.channel, ts=ref.ts, text=text, blocks=body)

    async def post_group_detail(
        self, cards: Sequence[ProposalCard], ref: MessageRef, part: int = 0
    ) -> bool:
        messages = blocks.group_detail_messages(cards)
        if part < len(messages):
            await self._post(ref.channel, messages[part], thread_ts=ref.ts)
        return part + 1 < len(messages)

    async def post_in_thread(
        self, card: ProposalCard | None, channel: str, thread_ts: str | None, text: str
    ) -> MessageRef:
        # Thread notices carry outside text (results, errors, worker names): all escaped.
        return await self._post(channel, mrkdwn.message(mrkdwn.escape(text)), thread_ts=thread_ts)

    async def post_file(
        self,
        card: ProposalCard,
        channel: str,
        thread_ts: str | None,
        *,
        filename: str,
        content: bytes,
        title: str,
    ) -> None:
        from bot.slack.files import upload_png

        await upload_png(
            self.client,
            channel=channel,
            thread_ts=thread_ts,
            content=content,
            filename=filename,
            title=title,
        )
