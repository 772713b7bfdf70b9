"""Sign and build requests exactly as Slack sends them to a Request URL.

Bolt verifies every HTTP request (``X-Slack-Signature`` over the raw body), so tests that
drive ``POST /slack/events`` must produce the same bytes and headers Slack would: events
arrive as JSON, slash commands and interactivity as ``application/x-www-form-urlencoded``
(interactivity wraps its JSON in a single ``payload=`` field). The ``*_payload`` builders
return the decoded dicts (what Socket Mode envelopes carry); the ``*_body`` builders return
the encoded bytes (what HTTP mode receives). Field names and shapes follow real captures.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "CONTENT_TYPE_FORM",
    "CONTENT_TYPE_JSON",
    "ENTERPRISE_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "VERIFICATION_TOKEN",
    "app_mention_event",
    "block_actions_body",
    "block_actions_payload",
    "event_callback_body",
    "event_callback_payload",
    "sign",
    "signed_headers",
    "slash_command_body",
    "slash_command_payload",
    "url_verification_body",
    "url_verification_payload",
    "verify",
]

# Identities shared with tests.fakes.slack.FakeSlack's defaults, so a payload built here
# names the same workspace, app and bot that the fake Web API answers auth.test with.
TEAM_ID = "T0FAKETEAM"
TEAM_DOMAIN = "infraai-test"
ENTERPRISE_ID: str | None = None
API_APP_ID = "A0FAKEAPP"
BOT_USER_ID = "U0FAKEBOT"
BOT_ID = "B0FAKEBOT"
# The legacy verification token Slack still puts in every payload (Bolt ignores it unless
# configured with one).
VERIFICATION_TOKEN = "fakeVerificationToken0000"

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_FORM = "application/x-www-form-urlencoded"

# Slack rejects requests whose timestamp is more than five minutes from its clock; Bolt
# enforces the same window, which the "stale timestamp" tests step outside of.
MAX_CLOCK_SKEW_SECONDS = 60 * 5

_counter = itertools.count(1)


def _unique(prefix: str, width: int = 9) -> str:
    """Slack-looking IDs that are unique within a test run (Ev…, trigger ids, …)."""
    return f"{prefix}{uuid.uuid4().hex[:width].upper()}"


def _ts(now: float | None = None) -> str:
    """A Slack ``ts``: seconds with exactly six decimals, unique per call in this process."""
    base = time.time() if now is None else now
    return f"{int(base)}.{next(_counter) % 1_000_000:06d}"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Return the two headers Slack adds to every request it sends to a Request URL.

    ``X-Slack-Signature`` is ``v0=`` + hex HMAC-SHA256(secret, ``v0:{ts}:{raw body}``); the
    body must be the exact bytes sent, which is why the builders return bytes.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """``sign()`` plus the ``Content-Type`` Slack uses for this kind of body.

    JSON bodies (events, url_verification) start with ``{``; everything else Slack sends is
    form-encoded. Bolt parses by content type, so getting it wrong hides real bugs.
    """
    content_type = CONTENT_TYPE_JSON if body.lstrip().startswith(b"{") else CONTENT_TYPE_FORM
    return {"Content-Type": content_type, **sign(secret, body, timestamp)}


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float | None = None,
) -> bool:
    """Check a signature the way Slack documents (and Bolt implements) it.

    Useful to test outgoing signing code, and to prove ``sign()`` agrees with Bolt.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    try:
        ts = int(raw_ts)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > MAX_CLOCK_SKEW_SECONDS:
        return False
    expected = sign(secret, body, ts)["X-Slack-Signature"]
    return hmac.compare_digest(expected, signature)


# --------------------------------------------------------------------------------------
# Events API


def app_mention_event(
    text: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0OPS",
    ts: str | None = None,
    thread_ts: str | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """An ``app_mention`` event as Slack delivers it (``text`` already holds ``<@U…>``)."""
    event_ts = ts or _ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user_id,
        "text": text,
        "ts": event_ts,
        "client_msg_id": str(uuid.uuid4()),
        "team": team_id,
        "channel": channel_id,
        "event_ts": event_ts,
        "blocks": [
            {
                "type": "rich_text",
                "block_id": _unique("", 4).lower(),
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                ],
            }
        ],
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def event_callback_payload(
    event: Mapping[str, Any],
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """The ``event_callback`` envelope Slack wraps around every Events API event.

    ``authorizations`` names the bot user: Bolt's single-team authorization cross-checks it
    and its "ignore self" middleware relies on the bot identity from auth.test.
    """
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": ENTERPRISE_ID,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or _unique("Ev", 10),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": ENTERPRISE_ID,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def event_callback_body(
    event: Mapping[str, Any],
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> bytes:
    """JSON body of an Events API delivery (send with ``Content-Type: application/json``)."""
    payload = event_callback_payload(
        event,
        team_id=team_id,
        api_app_id=api_app_id,
        bot_user_id=bot_user_id,
        event_id=event_id,
        event_time=event_time,
    )
    return json.dumps(payload).encode()


def url_verification_payload(challenge: str) -> dict[str, Any]:
    """The one-off handshake Slack sends when a Request URL is saved."""
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def url_verification_body(challenge: str) -> bytes:
    """JSON body of the url_verification handshake (Slack signs it like any other)."""
    return json.dumps(url_verification_payload(challenge)).encode()


# --------------------------------------------------------------------------------------
# Slash commands


def slash_command_payload(
    text: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0OPS",
    response_url: str = "https://hooks.slack.com/commands/T0FAKETEAM/1/fake",
    command: str = "/infraai",
    *,
    user_name: str | None = None,
    channel_name: str = "ops",
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The form fields of a slash command, all strings, in the order Slack sends them."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(
    text: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0OPS",
    response_url: str = "https://hooks.slack.com/commands/T0FAKETEAM/1/fake",
    command: str = "/infraai",
    **fields: Any,
) -> bytes:
    """Form-encoded slash command body (``application/x-www-form-urlencoded``).

    Extra keyword arguments go to ``slash_command_payload`` (user_name, channel_name, …).
    """
    payload = slash_command_payload(text, user_id, channel_id, response_url, command, **fields)
    return urlencode(payload).encode()


# --------------------------------------------------------------------------------------
# Interactivity


def _trigger_id() -> str:
    return f"{int(time.time())}.{next(_counter)}.{uuid.uuid4().hex}"


def _find_block_id(message: Mapping[str, Any], action_id: str) -> str | None:
    """The block_id of the block holding ``action_id``, as Slack reports it on a click."""
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, Mapping) and element.get("action_id") == action_id:
                block_id = block.get("block_id")
                return str(block_id) if block_id is not None else None
    return None


def _find_button(message: Mapping[str, Any], action_id: str) -> Mapping[str, Any] | None:
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, Mapping) and element.get("action_id") == action_id:
                return element
    return None


def block_actions_payload(
    action_id: str,
    value: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0OPS",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0FAKETEAM/1/fake",
    message: Mapping[str, Any] | None = None,
    *,
    user_name: str | None = None,
    channel_name: str = "ops",
    block_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = API_APP_ID,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click on a message.

    When ``message`` is the message the bot posted (e.g. from ``FakeSlack.messages()``), the
    clicked button's ``block_id`` and label are taken from its blocks, as Slack does.
    """
    name = user_name or user_id.lower()
    msg: dict[str, Any] = (
        dict(message)
        if message is not None
        else {
            "type": "message",
            "subtype": "bot_message",
            "text": "",
            "ts": message_ts,
            "bot_id": BOT_ID,
            "blocks": [],
        }
    )
    msg.setdefault("type", "message")
    msg.setdefault("ts", message_ts)
    button = _find_button(msg, action_id)
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id or _find_block_id(msg, action_id) or _unique("", 5).lower(),
        "text": (button or {}).get("text")
        or {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if button is not None and button.get("style"):
        action["style"] = button["style"]
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": _trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def block_actions_body(
    action_id: str,
    value: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0OPS",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0FAKETEAM/1/fake",
    message: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bytes:
    """Form-encoded ``payload=<json>`` body of a button click, as Slack posts it."""
    payload = block_actions_payload(
        action_id, value, user_id, channel_id, message_ts, response_url, message, **fields
    )
    return urlencode({"payload": json.dumps(payload)}).encode()
