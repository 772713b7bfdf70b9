"""Files to Slack: a PNG into a thread with slack_sdk's `files_upload_v2`.

v2 is three calls (`files.getUploadURLExternal`, the upload POST, `files.completeUploadExternal`);
slack_sdk makes them. Errors become `NotifierError` as for messages: a rate limit or an
outage delays the graph, a permanent refusal (no such channel, missing `files:write`) ends it.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn
from bot.slack.notifier import PERMANENT_ERRORS
from core.notifier import NotifierError


async def upload_png(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str | None,
    content: bytes,
    filename: str,
    title: str,
    comment: str = "",
) -> None:
    """Share `content` in `channel` (in the thread of `thread_ts` when given)."""
    kwargs: dict[str, object] = {
        "channel": channel,
        "content": content,
        "filename": filename,
        "title": title[:250],
        "alt_txt": title[:1000],
    }
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    if comment:
        kwargs["initial_comment"] = str(mrkdwn.escape(comment))
    try:
        await client.files_upload_v2(**kwargs)  # type: ignore[arg-type]
    except SlackApiError as exc:
        response = exc.response
        error = str(response.get("error", "")) if response is not None else ""
        if response is not None and (response.status_code == 429 or error == "ratelimited"):
            retry_after = float(response.headers.get("Retry-After", "1") or 1)
            raise NotifierError("files upload: rate limited", retry_after=retry_after) from None
        raise NotifierError(
            f"files upload: {error or 'failed'}",
            permanent=error in PERMANENT_ERRORS or error in UPLOAD_REFUSALS,
        ) from None
    except (SlackRequestError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise NotifierError(f"files upload: {type(exc).__name__}: {exc}") from None


UPLOAD_REFUSALS = {"file_not_found", "invalid_channel", "file_upload_disabled"}
