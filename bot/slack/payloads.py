"""What listeners read from a Slack payload, read strictly.

A button's value is exactly what `bot.slack.blocks` wrote — a proposal id in plain decimal —
or it names nothing: `int()` would also read `"1_0"` as 10, `" 1"`, `"+1"` and `"１"` as 1, and
a 30-digit number that no database column holds. Ids and channels are strings or absent.
Everything here is pure: the listeners decide what to answer.
"""

from __future__ import annotations

import re
from typing import Any

_PROPOSAL_ID = re.compile(r"[1-9][0-9]{0,9}")
MAX_PROPOSAL_ID = 2**31 - 1  # the proposals.id column (INTEGER on PostgreSQL)


def proposal_id(value: object) -> int | None:
    """The proposal a button names, or None when the value is not one InfraAI writes."""
    if not isinstance(value, str) or not _PROPOSAL_ID.fullmatch(value):
        return None
    number = int(value)
    return number if number <= MAX_PROPOSAL_ID else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _field(body: dict[str, Any], name: str, key: str) -> str | None:
    holder = body.get(name)
    return _text(holder.get(key)) if isinstance(holder, dict) else None


def clicker(body: dict[str, Any]) -> str | None:
    """The user id of whoever clicked."""
    return _field(body, "user", "id")


def action_value(body: dict[str, Any]) -> object:
    """The clicked element's value (of any type: `proposal_id` judges it)."""
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return actions[0].get("value")
    return None


def click_channel(body: dict[str, Any]) -> str | None:
    return _field(body, "channel", "id") or _field(body, "container", "channel_id")


def click_message_ts(body: dict[str, Any]) -> str | None:
    return _field(body, "container", "message_ts")


def text_field(fields: dict[str, Any], name: str) -> str | None:
    """A non-empty string field of a command or an event, else None."""
    return _text(fields.get(name))


def is_http_url(value: object) -> bool:
    """A response_url worth posting to (Slack's are https; the tests' fake is http)."""
    return (
        isinstance(value, str)
        and value.startswith(("https://", "http://"))
        and value.isprintable()
        and " " not in value
    )
