"""`/infraai dashboards` in Slack: the links as a message, a panel's picture in a thread.

A slash command answers through its response_url, which cannot carry a file. A picture is
therefore posted as the assistant posts answers: a root message in the channel saying who
asked for which panel (with its link), and the PNG uploaded into its thread with
`files_upload_v2`. If the bot cannot post there (not in the channel, an outage), the person
still gets the panel's link as the command's reply.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn
from bot.slack.assistant import SLACK_FAULTS
from core.dashboards import DashboardLink, Found

log = logging.getLogger(__name__)


def _dashboard_line(board: DashboardLink) -> mrkdwn.Mrkdwn:
    title = mrkdwn.link(board.url, board.title) or mrkdwn.escape(board.title)
    return mrkdwn.compose("• ", title, f" ({board.folder})")


def dashboards_text(found: Found) -> mrkdwn.Mrkdwn:
    """The reply as mrkdwn: links to dashboards, to one dashboard's panels, to one panel."""
    if found.panel is not None and found.board is not None:
        panel = mrkdwn.link(found.panel.url, found.panel.title) or mrkdwn.escape(found.panel.title)
        board = mrkdwn.link(found.board.url, found.board.title) or mrkdwn.escape(found.board.title)
        parts: list[str] = ["📊 Panel ", panel, " of ", board]
        if found.note:
            parts += ["\n", f"No picture: {found.note}."]
        return mrkdwn.compose(*parts)
    if found.board is not None:
        lines: list[str] = [_dashboard_line(found.board), mrkdwn.Mrkdwn("\n")]
        if not found.panels:
            lines.append("It has no panels.")
        for p in found.panels:
            label = mrkdwn.link(p.url, p.title) or mrkdwn.escape(p.title)
            lines += [mrkdwn.Mrkdwn("\n"), f"   {p.id}  ", label]
        lines += [
            mrkdwn.Mrkdwn("\n"),
            f"A picture of one: /infraai dashboards {found.search} panel <id>",
        ]
        return mrkdwn.compose(*lines)
    if not found.dashboards:
        where = f" matches {found.search!r}" if found.search else " is there"
        return mrkdwn.compose(f"No Grafana dashboard{where}.")
    head = (
        f"Grafana dashboards matching {found.search!r}:" if found.search else "Grafana dashboards:"
    )
    lines = [head]
    for each in found.dashboards:
        lines += [mrkdwn.Mrkdwn("\n"), _dashboard_line(each)]
    if found.more:
        lines += [mrkdwn.Mrkdwn("\n"), f"… and {found.more} more: narrow the search."]
    return mrkdwn.compose(*lines)


async def post_panel_picture(
    client: AsyncWebClient, *, channel: str, user: str, found: Found
) -> bool:
    """The panel's PNG in the thread of a root message naming who asked; False when it could
    not be posted (the caller answers with the link instead)."""
    assert found.image is not None and found.panel is not None and found.board is not None
    root_text = mrkdwn.compose(mrkdwn.mention(user), " asked for ", dashboards_text(found))
    try:
        root = await client.chat_postMessage(channel=channel, text=str(root_text))
        await client.files_upload_v2(
            channel=channel,
            thread_ts=str(root["ts"]),
            content=found.image.png,
            filename=found.image.filename,
            title=f"{found.board.title} · {found.panel.title}",
            alt_txt=f"Grafana panel {found.panel.title} of {found.board.title}",
        )
    except SLACK_FAULTS as exc:
        log.warning("/infraai dashboards: picture not posted: %s", type(exc).__name__)
        return False
    return True
