"""`POST /slack/events` at the door: Bolt's signature check (bad, stale, missing → 401), the
url_verification handshake, and Slack's retries of an event acked and dropped.

Runs the whole HTTP app on SQLite with in-process execution: nothing here needs a server
beyond the loopback fake Slack.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.slack_signing import (
    app_mention_event,
    event_callback_body,
    sign,
    signed_headers,
    slash_command_body,
    url_verification_body,
)
from tests.stack import CHANNEL, SECRET, Stack, make_stack


@pytest.fixture
async def stack(sqlite_db: str) -> AsyncIterator[Stack]:
    async for s in make_stack(sqlite_db, redis=False):
        yield s


async def post(stack: Stack, body: bytes, headers: dict[str, str]) -> Any:
    return await stack.client.post("/slack/events", data=body, headers=headers)


def command_body(stack: Stack, text: str = "help") -> bytes:
    return slash_command_body(text, response_url=stack.slack.new_response_url())


async def test_url_verification_echoes_the_challenge(stack: Stack) -> None:
    body = url_verification_body("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    response = await stack.signed(body)
    assert response.status == 200
    answer = await response.text()
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in answer
    assert json.loads(answer) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }


async def test_a_correctly_signed_command_is_accepted(stack: Stack) -> None:
    response = await stack.signed(command_body(stack))
    assert response.status == 200
    await stack.slack.wait_for(lambda: stack.slack.responses(), timeout=5)


def _bad_signature(body: bytes) -> dict[str, str]:
    headers = signed_headers(SECRET, body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    return headers


def _wrong_secret(body: bytes) -> dict[str, str]:
    return signed_headers("not-the-secret", body)


def _stale(body: bytes) -> dict[str, str]:
    # Correctly signed, but six minutes old: a replay.
    return signed_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)


def _from_the_future(body: bytes) -> dict[str, str]:
    return signed_headers(SECRET, body, timestamp=int(time.time()) + 6 * 60)


def _no_signature(body: bytes) -> dict[str, str]:
    headers = signed_headers(SECRET, body)
    del headers["X-Slack-Signature"]
    return headers


def _no_timestamp(body: bytes) -> dict[str, str]:
    headers = signed_headers(SECRET, body)
    del headers["X-Slack-Request-Timestamp"]
    return headers


def _no_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded"}


def _garbage_timestamp(body: bytes) -> dict[str, str]:
    headers = signed_headers(SECRET, body)
    headers["X-Slack-Request-Timestamp"] = "yesterday"
    return headers


def _body_changed_after_signing(body: bytes) -> dict[str, str]:
    return signed_headers(SECRET, body + b"&text=pause")


FORGERIES = {
    "bad signature": _bad_signature,
    "wrong secret": _wrong_secret,
    "stale timestamp": _stale,
    "timestamp from the future": _from_the_future,
    "missing signature": _no_signature,
    "missing timestamp": _no_timestamp,
    "missing both headers": _no_headers,
    "unparsable timestamp": _garbage_timestamp,
    "body changed after signing": _body_changed_after_signing,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_requests_are_refused_with_401(stack: Stack, forge: Any) -> None:
    command = command_body(stack, "pause")
    click = json.dumps({"type": "block_actions"}).encode()
    challenge = url_verification_body("secret-challenge")
    for body in (command, click, challenge):
        response = await post(stack, body, forge(body))
        assert response.status == 401, (body[:60], await response.text())
        assert "secret-challenge" not in await response.text()
    # Nothing reached a listener: no command ran, nothing was answered or audited.
    assert stack.slack.responses() == []
    assert stack.slack.calls_to("chat.postMessage") == []


async def test_the_signature_covers_the_raw_bytes(stack: Stack) -> None:
    """Re-encoding the same fields differently (what a proxy might do) breaks the signature."""
    body = command_body(stack, "policy list")
    assert b"policy+list" in body
    headers = signed_headers(SECRET, body)
    response = await post(stack, body.replace(b"policy+list", b"policy%20list"), headers)
    assert response.status == 401


async def test_signature_check_happens_before_the_body_is_interpreted(stack: Stack) -> None:
    response = await post(stack, b"not json, not a form", {**sign("nope", b"x")})
    assert response.status == 401


def mention(text: str, ts: str) -> dict[str, Any]:
    return app_mention_event(f"<@U0FAKEBOT> {text}", channel_id=CHANNEL, ts=ts)


async def test_a_slack_retry_of_an_event_is_acked_and_ignored(stack: Stack) -> None:
    retried = event_callback_body(mention("help", "1700000001.000100"))
    headers = {
        **signed_headers(SECRET, retried),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    response = await post(stack, retried, headers)
    assert response.status == 200
    # The first delivery of a different event is handled: its reply is the only one.
    fresh = event_callback_body(mention("help", "1700000002.000100"))
    response = await stack.signed(fresh)
    assert response.status == 200
    reply = await stack.slack.wait_for_message(
        CHANNEL, lambda m: m.thread_ts == "1700000002.000100", timeout=5
    )
    assert "InfraAI commands" in reply.all_text()
    assert [m.thread_ts for m in stack.slack.messages(CHANNEL)] == ["1700000002.000100"]


@pytest.mark.parametrize("retry", ["1", "2", "3"])
async def test_retries_of_commands_and_clicks_are_dropped_too(stack: Stack, retry: str) -> None:
    body = command_body(stack, "help")
    headers = {**signed_headers(SECRET, body), "X-Slack-Retry-Num": retry}
    response = await post(stack, body, headers)
    assert response.status == 200
    # A first delivery afterwards is answered; the retried one never was.
    url = stack.slack.new_response_url()
    await stack.signed(slash_command_body("help", response_url=url))
    await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=5)
    assert [r.url for r in stack.slack.responses()] == [url]


async def test_retry_num_zero_is_a_first_delivery(stack: Stack) -> None:
    """Socket Mode maps retry_attempt 0 to `x-slack-retry-num: 0`: that one must be handled."""
    body = event_callback_body(mention("help", "1700000003.000100"))
    headers = {**signed_headers(SECRET, body), "X-Slack-Retry-Num": "0"}
    assert (await post(stack, body, headers)).status == 200
    await stack.slack.wait_for_message(
        CHANNEL, lambda m: m.thread_ts == "1700000003.000100", timeout=5
    )


async def test_a_mention_of_a_command_runs_it_in_the_thread(stack: Stack) -> None:
    body = event_callback_body(mention("proposals", "1700000004.000100"))
    assert (await stack.signed(body)).status == 200
    reply = await stack.slack.wait_for_message(
        CHANNEL, lambda m: m.thread_ts == "1700000004.000100", timeout=5
    )
    assert "No proposals" in reply.all_text()
