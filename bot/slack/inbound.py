"""What arrives at the Request URL, checked before Bolt sees it.

Bolt's aiohttp adapter decodes the body with the charset the request claims and parses it
(JSON, or the form's `payload=`) when it builds the request, *before* its signature
middleware runs; its verifier then calls `int()` on the timestamp header. So an unknown
charset, bytes that are not UTF-8, JSON nested 100,000 deep or holding a 5,000-digit
integer, or a 5,000-digit timestamp each became a 500 with a traceback — from anyone, no
signature needed. And a correctly signed body of the wrong shape (a `payload=` that is a
list, `team: 5`) crashed Bolt's context extraction or its listener matchers.

Here, in this order:

1. `verify`: the timestamp is 1-12 ASCII digits within five minutes, the signature is
   `v0=` + 64 hex digits, and the HMAC over the raw bytes matches — else 401. Nothing of
   the body is read as text before this.
2. `decode`: UTF-8 (the only charset Slack sends) — else 400.
3. `parse`: as Bolt will parse it, bounded in depth, and an object — else 400.
4. `shape_problem`: the fields Bolt's context extraction and matchers read have the types
   Slack gives them — else 400.

`bolt_request` then builds Bolt's request, correcting one misreading of Bolt's (a slash
command whose text holds the word `payload`, see `misread_form`).

Bolt still verifies the signature itself afterwards (the same bytes pass); its log line for
a failed verification holds the whole body, so that logger is turned down (see `quiet_bolt`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body

MAX_SKEW_SECONDS = 60 * 5
MAX_DEPTH = 64  # Slack's deepest payloads (views, rich text) stay well under this
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
UTF8 = ("utf-8", "utf8")


class Refused(Exception):
    """The request is answered with `status` and a short `reason`, and goes no further."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify(secret: str, raw: bytes, headers: Mapping[str, str], now: float | None = None) -> None:
    """Slack's signature check on the raw bytes; anything unverifiable is 401."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise Refused(401, "invalid request")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_SECONDS:
        raise Refused(401, "invalid request")
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refused(401, "invalid request")


def decode(raw: bytes, charset: str | None) -> str:
    if charset is not None and charset.lower() not in UTF8:
        raise Refused(400, "unsupported charset: Slack sends UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Nesting deeper than `limit` (iterative: the check itself cannot overflow)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def misread_form(text: str, content_type: str | None) -> dict[str, str] | None:
    """The form's fields when Bolt would misread it, else None.

    Bolt takes any form body *containing* the word `payload` for an interactivity payload
    and, finding no `payload=` field, reads it as empty: `/infraai ask what is the payload`
    matched no listener and got no answer.
    """
    if content_type == "application/json" or text.startswith("{") or "payload" not in text:
        return None
    fields = dict(parse_qsl(text, keep_blank_values=True))
    return fields if "payload" not in fields else None


def parse(text: str, content_type: str | None) -> dict[str, Any]:
    """The body as Bolt reads it (same function, but a form with the word `payload` in it
    read as the form it is), refused when it is not a bounded JSON object: Bolt would crash
    on a list, and a deep one on anything that recurses."""
    try:
        body = misread_form(text, content_type) or parse_body(text, content_type)
    except (ValueError, RecursionError):  # bad JSON; an integer over 4,300 digits
        raise Refused(400, "the body is not a Slack payload") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body is not a Slack payload")
    if _too_deep(body):
        raise Refused(400, "the payload is nested too deeply")
    return body


# Fields Bolt reads while building a request's context or matching listeners, by the type
# Slack gives them. `null` is accepted wherever Bolt checks for it.
_ID_FIELDS = ("team", "enterprise", "user", "channel")  # a string, or an object with `id`
_STRING_FIELDS = (
    "type",
    "team_id",
    "enterprise_id",
    "user_id",
    "channel_id",
    "thread_ts",
    "response_url",
    "command",
    "challenge",
    "callback_id",
    "action_id",
    "block_id",
    "function_execution_id",
    "bot_access_token",
    "user_team",
    "context_team_id",
    "context_enterprise_id",
    "subtype",
    "bot_id",
)
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread")
_OBJECT_FIELDS = ("view", "container", "function_data", "state")
_LISTS_OF_OBJECTS = ("authorizations", "response_urls", "actions")


def _object_problem(body: Mapping[str, Any], where: str, depth: int = 0) -> str | None:
    if depth > 6:  # Bolt looks no deeper than event.message / authorizations[0]
        return None
    for name in _ID_FIELDS:
        value = body.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, dict) or not isinstance(value.get("id"), str | None):
            return f"{where}{name} is not a Slack id"
    for name in _STRING_FIELDS:
        if not isinstance(body.get(name), str | None):
            return f"{where}{name} is not a string"
    for name in _OBJECT_FIELDS:
        if not isinstance(body.get(name), dict | None):
            return f"{where}{name} is not an object"
    for name in _LISTS_OF_OBJECTS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return f"{where}{name} is not a list of objects"
        for item in value:
            problem = _object_problem(item, f"{where}{name}[].", depth + 1)
            if problem:
                return problem
    for name in _NESTED:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{where}{name} is not an object"
        problem = _object_problem(value, f"{where}{name}.", depth + 1)
        if problem:
            return problem
    return None


def shape_problem(body: Mapping[str, Any]) -> str | None:
    """Why `body` is not shaped like a Slack payload Bolt can handle, or None."""
    problem = _object_problem(body, "")
    if problem:
        return problem
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event_callback without an event type"
    if kind == "block_actions":
        actions = body.get("actions")
        if not actions or not isinstance(actions[0].get("action_id"), str):
            return "block_actions without an action"
        # A click names who clicked and where: without them nobody can be answered.
        if not _has_id(body.get("user")):
            return "block_actions without a user"
        if not _has_id(body.get("channel")) and not _has_id(body.get("container"), "channel_id"):
            return "block_actions without a channel"
    return None


def _has_id(holder: object, key: str = "id") -> bool:
    return isinstance(holder, dict) and isinstance(holder.get(key), str) and bool(holder[key])


def content_type_of(headers: Mapping[str, str]) -> str | None:
    claimed = headers.get("Content-Type")
    return claimed.split(";")[0] if claimed else None  # as Bolt reads it


def read(secret: str, raw: bytes, headers: Mapping[str, str], charset: str | None) -> str:
    """The verified, decoded body, fit for Bolt; `Refused` otherwise."""
    verify(secret, raw, headers)
    text = decode(raw, charset)
    problem = shape_problem(parse(text, content_type_of(headers)))
    if problem:
        raise Refused(400, f"malformed Slack payload: {problem}")
    return text


def bolt_request(text: str, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """Bolt's request for a body `read` accepted, with a misread form put right."""
    request = AsyncBoltRequest(body=text, query=query, headers=dict(headers))
    fields = misread_form(text, content_type_of(headers))
    if fields is not None:
        request.body = fields
        request.context = build_async_context(AsyncBoltContext({}), fields)
    return request


def refusal_body(refused: Refused) -> str:
    return json.dumps({"error": refused.reason})


def quiet_bolt() -> None:
    """Bolt logs the whole body of a request that fails its signature check, at INFO (1.9 MB
    for a large forged one). Requests are verified here first, but its logger stays at
    WARNING so that line can never be written."""
    logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
