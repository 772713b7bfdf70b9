"""Discovery replies in Slack: a scan's summary and the assets by subnet.

Hostnames, vendors and service names come from the network (a reverse DNS name is anyone's
to choose), so every one of them is escaped like any outside text.
"""

from __future__ import annotations

from typing import Any

from bot.slack import mrkdwn
from core import commands as c
from core.discovery.scan import plural

Message = tuple[str, list[dict[str, Any]]]


def _host(view: Any) -> mrkdwn.Mrkdwn:
    state = "🟢" if view.up else "🔴"
    name = mrkdwn.compose(" ", view.hostname) if view.hostname else mrkdwn.Mrkdwn("")
    vendor = mrkdwn.compose(" · ", view.vendor) if view.vendor else mrkdwn.Mrkdwn("")
    services = view.services() or "no open ports"
    return mrkdwn.compose(
        state,
        " `",
        view.address,
        mrkdwn.Mrkdwn("`"),
        name,
        vendor,
        " — ",
        services,
    )


def assets_message(reply: c.AssetList) -> Message:
    """Hosts grouped by subnet, each with its state and services."""
    hosts = sum(len(views) for _subnet, views in reply.groups)
    if not hosts:
        empty = (
            f"No assets match `{reply.needle}`."
            if reply.needle
            else "No assets yet: `/infraai scan <host|cidr>` finds them."
        )
        return mrkdwn.message(mrkdwn.escape(empty))
    lines: list[str] = [f"*{plural(hosts, 'host')} in {plural(len(reply.groups), 'subnet')}*"]
    for subnet, views in reply.groups:
        lines.append(str(mrkdwn.compose(mrkdwn.Mrkdwn("\n*"), subnet, mrkdwn.Mrkdwn("*"))))
        lines += [str(_host(v)) for v in views]
    if reply.more:
        lines.append(f"\n…and {reply.more} more: narrow with a filter (a CIDR, a name, a service).")
    return mrkdwn.message(mrkdwn.Mrkdwn("\n".join(lines)))


def scan_message(reply: c.ScanReport) -> Message:
    return mrkdwn.message(mrkdwn.compose("✅ ", reply.text))
