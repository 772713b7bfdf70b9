"""Malformed requests at `POST /slack/events`: a 4xx or an ephemeral answer, never a 500.

Before authentication (401 for what cannot be verified): odd timestamps, charsets, bodies
that are not UTF-8, JSON nested 1,000 deep or holding a 5,000-digit integer — none of it may
reach a parser before the signature is checked. After authentication (400 for what is not a
Slack payload): a `payload=` that is not a JSON object, missing `user`, no `actions`. Button
values are read exactly as InfraAI writes them (a proposal id in decimal): `"0_1"`, `" 1"`,
`"１"` or a 30-digit number name no proposal and get an ephemeral answer.

Whatever arrives: no traceback and no request body in the logs, and nothing half-written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fakes.slack_signing import (
    app_mention_event,
    block_actions_payload,
    event_callback_body,
    sign,
    signed_headers,
    slash_command_body,
    slash_command_payload,
)
from tests.helpers import count, crashloop, eventually, payload, policy
from tests.stack import CHANNEL, SECRET, STRANGER, Stack, make_stack

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture
async def stack(sqlite_db: str) -> AsyncIterator[Stack]:
    async for s in make_stack(sqlite_db, policy(), redis=False, infraai_dry_run=True):
        yield s


def assert_clean_logs(
    caplog: pytest.LogCaptureFixture, *secrets: bytes | str, ignore: str | None = None
) -> None:
    """No traceback, no error, and none of the given request bytes in any log record
    (except the `ignore` logger's)."""
    for record in caplog.records:
        if record.name == ignore:
            continue
        text = record.getMessage()
        assert record.exc_info is None, f"traceback logged: {text[:300]}"
        assert "Traceback" not in text, text[:300]
        assert record.levelno < logging.ERROR, text[:300]
        for secret in secrets:
            needle = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
            assert needle not in text, f"request body logged: {text[:300]}"


async def post(stack: Stack, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    response = await stack.client.post("/slack/events", data=body, headers=headers)
    return response.status, await response.text()


def signed(body: bytes, content_type: str = FORM, **extra: str) -> dict[str, str]:
    return {"Content-Type": content_type, **sign(SECRET, body), **extra}


def deep_json(levels: int) -> bytes:
    return b'{"type":"event_callback","event":' + b"[" * levels + b"]" * levels + b"}"


def huge_int_json(digits: int) -> bytes:
    return b'{"type":"event_callback","event":{"type":"x","n":' + b"9" * digits + b"}}"


# --- before authentication ------------------------------------------------------------

UNVERIFIABLE: dict[str, Any] = {
    "5,000-digit timestamp": lambda b: {**signed(b), "X-Slack-Request-Timestamp": "1" * 5000},
    "negative timestamp": lambda b: {**signed(b), "X-Slack-Request-Timestamp": "-1"},
    "fullwidth digits": lambda b: {**signed(b), "X-Slack-Request-Timestamp": "１７００"},
    "timestamp with a sign": lambda b: {
        **signed(b),
        "X-Slack-Request-Timestamp": f"+{int(time.time())}",
    },
    "empty timestamp": lambda b: {**signed(b), "X-Slack-Request-Timestamp": ""},
    "signature not hex": lambda b: {**signed(b), "X-Slack-Signature": "v0=zz"},
    "unknown charset, unsigned": lambda b: {"Content-Type": f"{FORM}; charset=klingon"},
}


@pytest.mark.parametrize("forge", UNVERIFIABLE.values(), ids=UNVERIFIABLE.keys())
async def test_what_cannot_be_verified_is_401(
    stack: Stack, forge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = slash_command_body("pause", response_url=stack.slack.new_response_url())
    status, _ = await post(stack, body, forge(body))
    assert status == 401
    assert stack.slack.responses() == []
    assert_clean_logs(caplog, body)


UNSIGNED_BODIES = {
    "invalid UTF-8": b"payload=%7B%7D&text=\xff\xfe\xfa",
    "nesting 100,000 deep": deep_json(100_000),
    "a 5,000-digit integer": huge_int_json(5_000),
    "not JSON": b"{not json",
}


@pytest.mark.parametrize("body", UNSIGNED_BODIES.values(), ids=UNSIGNED_BODIES.keys())
async def test_unsigned_garbage_is_401_before_any_parsing(
    stack: Stack, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}
    status, _ = await post(stack, body, headers)
    assert status == 401
    assert_clean_logs(caplog, body[:200])


async def test_a_forged_request_leaves_no_body_in_the_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt logs the whole body of a request whose signature fails, at INFO (1.9 MB for a
    large one): nothing of it may reach the logs."""
    caplog.set_level(logging.DEBUG)
    marker = "forged-body-marker"
    body = slash_command_body(f"pause {marker} " + "x" * 100_000)
    headers = {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}
    status, _ = await post(stack, body, headers)
    assert status == 401
    assert_clean_logs(caplog, marker, "x" * 100)
    assert max(len(r.getMessage()) for r in caplog.records) < 500
    # Should a request ever pass the check here and fail Bolt's own (a clock edge), Bolt's
    # body-logging line is below its logger's level.
    bolt_verification = logging.getLogger("slack_bolt.RequestVerification")
    assert not bolt_verification.isEnabledFor(logging.INFO)


# --- after authentication: malformed bodies -------------------------------------------

MALFORMED = {
    "unknown charset": (b"command=%2Finfraai&text=help", f"{FORM}; charset=klingon"),
    "invalid UTF-8": (b"command=%2Finfraai&text=\xff\xfe", FORM),
    "nesting 1,000 deep": (deep_json(1_000), JSON),
    "nesting 100,000 deep": (deep_json(100_000), JSON),
    "a 5,000-digit integer": (huge_int_json(5_000), JSON),
    "JSON, not an object": (b'["event_callback"]', JSON),
    "not JSON": (b"{not json", JSON),
    "payload= not JSON": (urlencode({"payload": "{garbage"}).encode(), FORM),
    "payload= a list": (urlencode({"payload": "[1, 2]"}).encode(), FORM),
    "payload= a string": (urlencode({"payload": '"block_actions"'}).encode(), FORM),
    "payload= nested deep": (urlencode({"payload": deep_json(5_000).decode()}).encode(), FORM),
    "team is a number": (
        urlencode({"payload": json.dumps({"type": "block_actions", "team": 5})}).encode(),
        FORM,
    ),
    "user is a list": (
        urlencode({"payload": json.dumps({"type": "block_actions", "user": [1]})}).encode(),
        FORM,
    ),
    "event is a string": (json.dumps({"type": "event_callback", "event": "x"}).encode(), JSON),
}


@pytest.mark.parametrize(("body", "content_type"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_signed_malformed_body_is_400(
    stack: Stack, body: bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, text = await post(stack, body, signed(body, content_type))
    assert status == 400, text
    assert len(text) < 200 and "Traceback" not in text
    assert_clean_logs(caplog, body[:200])


# --- after authentication: clicks that do not name a proposal --------------------------


async def pending_proposal(stack: Stack) -> None:
    await stack.post_alerts(payload(crashloop()))
    await stack.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )


def click_body(stack: Stack, **changes: Any) -> bytes:
    data = block_actions_payload(
        "proposal_approve", "1", channel_id=CHANNEL, response_url=stack.slack.new_response_url()
    )
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return urlencode({"payload": json.dumps(data)}).encode()


async def nothing_changed(stack: Stack) -> None:
    assert await count(stack.runtime, "proposals", "status = 'pending'") == 1
    assert await count(stack.runtime, "job_logs") == 0
    decisions = "verb IN ('proposal.approved', 'proposal.denied', 'approval.too_late')"
    assert await count(stack.runtime, "audit_events", decisions) == 0


@pytest.mark.parametrize(
    "value", ["0_1", "1_0", " 1", "1 ", "+1", "#1", "１", "01", "1.0", "0", "-1", "9" * 30, ""]
)
async def test_a_button_value_is_read_strictly(
    stack: Stack, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await pending_proposal(stack)
    response = await stack.click("proposal_approve", value)
    assert response.status == 200
    answer = await stack.slack.wait_for(
        lambda: next(iter(stack.slack.ephemerals(CHANNEL)), None), timeout=10
    )
    assert "does not name a proposal" in answer.text
    await nothing_changed(stack)
    assert_clean_logs(caplog)


@pytest.mark.parametrize(
    "changes",
    [
        {"actions": []},
        {"actions": None},
        {"actions": [{"action_id": "proposal_approve"}]},  # no value
        {"actions": [{"action_id": "proposal_approve", "value": 1}]},  # not a string
        {"actions": ["proposal_approve"]},
        {"user": None},
        {"user": {"name": "mallory"}},
        {"user": {"id": 12}},
        {"user": "U0ALICE"},
        {"channel": None, "container": None},
        {"container": {"type": "message"}, "channel": None},
        {"actions": [{"action_id": "proposal_explode", "value": "1"}]},
    ],
    ids=lambda c: json.dumps(c)[:60],
)
async def test_a_malformed_click_changes_nothing_and_logs_no_traceback(
    stack: Stack, changes: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await pending_proposal(stack)
    body = click_body(stack, **changes)
    status, text = await post(stack, body, signed(body))
    assert status < 500, text
    if status == 200:
        # Acked: the clicker (when there is one to tell) hears why nothing happened.
        await stack.slack.wait_for(
            lambda: stack.slack.ephemerals(CHANNEL) or stack.slack.responses(), timeout=10
        )
    await nothing_changed(stack)
    assert_clean_logs(caplog)


async def test_a_group_click_without_a_container_changes_nothing(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await pending_proposal(stack)
    data = block_actions_payload("group_approve", "group", channel_id=CHANNEL)
    data["container"] = None
    body = urlencode({"payload": json.dumps(data)}).encode()
    status, _ = await post(stack, body, signed(body))
    assert status < 500
    await nothing_changed(stack)
    assert_clean_logs(caplog)


async def test_a_stranger_clicking_a_garbage_value_is_told_and_nothing_is_audited_twice(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    await pending_proposal(stack)
    await stack.click("proposal_deny", "9" * 30, user=STRANGER)
    answer = await stack.slack.wait_for(
        lambda: next(iter(stack.slack.ephemerals(CHANNEL, STRANGER)), None), timeout=10
    )
    assert "does not name a proposal" in answer.text
    await nothing_changed(stack)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_mention"},  # no text, no user, no ts
        {"type": "app_mention", "text": 5, "user": "U0ALICE", "ts": "1.0", "channel": CHANNEL},
        {"type": "app_mention", "text": "help", "user": [], "ts": {}, "channel": CHANNEL},
    ],
)
async def test_a_malformed_mention_is_not_a_500(
    stack: Stack, event: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = event_callback_body(event)
    status, _ = await post(stack, body, signed_headers(SECRET, body))
    assert status < 500
    assert_clean_logs(caplog)


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": None},
        {"text": None},
        {"command": "/somethingelse"},
    ],
)
async def test_a_malformed_slash_command_is_not_a_500(
    stack: Stack, fields: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    data: dict[str, Any] = slash_command_payload(
        "help", channel_id=CHANNEL, response_url=stack.slack.new_response_url()
    )
    for key, value in fields.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    body = urlencode(data).encode()
    status, _ = await post(stack, body, signed(body))
    assert status < 500
    if status == 200 and "user_id" in data:
        await stack.slack.wait_for(lambda: stack.slack.responses(), timeout=10)
    assert_clean_logs(caplog)


# --- the transport ----------------------------------------------------------------------


async def test_a_body_over_the_size_limit_is_413(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = slash_command_body("help " + "x" * (2 * 1024 * 1024))
    status, _ = await post(stack, body, signed(body))
    assert status == 413
    assert_clean_logs(caplog, "x" * 100)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "klingon"])
async def test_a_body_that_does_not_decompress_is_a_4xx(
    stack: Stack, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"\x1f\x8b\x08\x00garbage that is not gzip"
    status, _ = await post(stack, body, {**signed(body), "Content-Encoding": encoding})
    assert 400 <= status < 500
    # aiohttp's own connection handling logs the decoding failure as well (draining the
    # rest of the body, or before any handler runs): that logger is the HTTP app's to
    # filter, for every route. Nothing of ours or Bolt's logs a traceback.
    assert_clean_logs(caplog, ignore="aiohttp.server")


@pytest.mark.parametrize("text", ["payload", "ask what is in the payload?", "help payload=1"])
async def test_a_command_mentioning_payload_is_still_a_command(stack: Stack, text: str) -> None:
    """Bolt reads any form body containing the word `payload` as an interactivity payload,
    and a slash command typed with that word came back empty (unhandled, 404)."""
    url = stack.slack.new_response_url(CHANNEL)
    body = slash_command_body(text, channel_id=CHANNEL, response_url=url)
    status, _ = await post(stack, body, signed(body))
    assert status == 200
    if text.startswith("ask "):
        # A question goes to the channel as a root message, answered in its thread.
        [root] = await stack.slack.wait_for(
            lambda: [m for m in stack.slack.messages(CHANNEL) if "asked" in m.text], timeout=10
        )
        assert "what is in the payload?" in root.text
        return
    [answer] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=10)
    assert answer.body.get("text")


async def test_a_mention_reply_slack_refuses_is_one_log_line(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread reply Slack answers with an error (not in channel, an outage) is lost, and
    said so in one line: no traceback."""
    caplog.set_level(logging.INFO)
    stack.slack.fail_next(status=500, methods=["chat.postMessage"])
    body = event_callback_body(
        app_mention_event("<@U0FAKEBOT> help", channel_id=CHANNEL, ts="1700000200.000100")
    )
    assert (await post(stack, body, signed_headers(SECRET, body)))[0] == 200
    await stack.slack.wait_for(lambda: stack.slack.calls_to("chat.postMessage"), timeout=10)

    async def delivery_notes() -> list[str]:
        return [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]

    await eventually(delivery_notes, bool, within=10, what="the undelivered reply logged")
    assert_clean_logs(caplog)
