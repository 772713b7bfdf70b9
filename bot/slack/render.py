"""Command replies as Block Kit: `core.commands` returns data, this chooses the blocks.

Every text goes through `bot.slack.mrkdwn`: a reply echoes what was typed (a policy name, a
label value), and that must stay text however Slack would read it.
"""

from __future__ import annotations

from typing import Any

from bot.slack import blocks, mrkdwn
from core import commands as c
from core.policy.store import export_document

Message = tuple[str, list[dict[str, Any]]]


def _text(text: str) -> Message:
    """Core's words, escaped: what a person typed or a command echoes stays text."""
    return mrkdwn.message(mrkdwn.said(text))


def _code(text: str) -> Message:
    return mrkdwn.message(mrkdwn.code_block(text))


def render_reply(reply: c.Reply) -> Message:
    if isinstance(reply, c.Text | c.Decided):
        return _text(reply.text)
    if isinstance(reply, c.Error):
        return blocks.error_message(reply.text, reply.usage)
    if isinstance(reply, c.Help):
        return blocks.help_message(reply.commands)
    if isinstance(reply, c.Proposals):
        return blocks.proposals_message(reply.views)
    if isinstance(reply, c.Jobs):
        return blocks.jobs_message(
            [row.as_dict() | {"started_at": row.started_at} for row in reply.rows]
        )
    if isinstance(reply, c.Policies):
        return blocks.policies_message(reply.specs)
    if isinstance(reply, c.PolicyYaml):
        return _code(export_document([reply.spec]).rstrip())
    if isinstance(reply, c.PolicyTest):
        return _code("\n\n".join(r.as_text() for r in reply.reports))
    if isinstance(reply, c.QueryResult):  # the ephemeral fallback: the graph needs a thread
        from bot.slack.query import query_message

        return query_message(reply, ephemeral=True)
    if isinstance(reply, c.Status):
        items = [(h.name, h.state, h.detail) for h in reply.items]
        text, body = blocks.status_message(items)
        pause = "⏸️ Auto-remediation is *paused*." if reply.paused else "▶️ Auto-remediation is on."
        return text, [*body, {"type": "context", "elements": [{"type": "mrkdwn", "text": pause}]}]
    # ---- Grafana (issue 9)
    if isinstance(reply, c.Dashboards):
        from bot.slack.dashboards import dashboards_text

        return mrkdwn.message(dashboards_text(reply.found))
    if isinstance(reply, c.ScanReport | c.AssetList):  # discovery
        from bot.slack import discovery

        if isinstance(reply, c.ScanReport):
            return discovery.scan_message(reply)
        return discovery.assets_message(reply)
    return _text(str(reply))
