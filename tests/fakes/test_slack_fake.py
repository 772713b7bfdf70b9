"""Prove the Slack fake with the real slack_sdk and slack_bolt.

Every other Slack test trusts this fake; these tests are why that trust is earned: the
real clients (retry handlers, Bolt's signature check, the Socket Mode client) run against
it unmodified, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import (
    app_mention_event,
    block_actions_body,
    block_actions_payload,
    event_callback_body,
    sign,
    signed_headers,
    slash_command_body,
    url_verification_body,
    verify,
)

BOT_TOKEN = "xoxb-test-123"
APP_TOKEN = "xapp-1-test-456"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVE_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Restart?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": "42",
            },
            {
                "type": "button",
                "action_id": "deny",
                "text": {"type": "plain_text", "text": "Deny"},
                "value": "42",
            },
        ],
    },
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as slack:
        yield slack


def client_for(fake: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url, **kwargs)


# --------------------------------------------------------------------------------------
# Web API through AsyncWebClient


async def test_post_update_and_auth_test(fake: FakeSlack) -> None:
    client = client_for(fake)
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == (
        "U0FAKEBOT",
        "B0FAKEBOT",
        "T0FAKETEAM",
    )
    assert auth["url"].startswith("https://")

    first = await client.chat_postMessage(channel="C0OPS", text="proposal", blocks=APPROVE_BLOCKS)
    reply = await client.chat_postMessage(channel="C0OPS", text="running", thread_ts=first["ts"])
    assert first["ts"] == "1700000000.000100"
    assert float(reply["ts"]) > float(first["ts"])
    assert first["channel"] == "C0OPS"
    assert first["message"]["blocks"] == APPROVE_BLOCKS
    assert reply["message"]["thread_ts"] == first["ts"]

    updated = await client.chat_update(
        channel="C0OPS", ts=first["ts"], text="approved", blocks=APPROVE_BLOCKS[:1]
    )
    assert updated["ts"] == first["ts"]
    assert updated["message"]["text"] == "approved"

    messages = fake.messages("C0OPS")
    assert [m.text for m in messages] == ["approved", "running"]
    assert messages[0].blocks == APPROVE_BLOCKS[:1]
    assert messages[0].history[0]["text"] == "proposal"
    assert messages[0].edited and messages[0].reply_count == 1
    assert [m.ts for m in fake.messages("C0OPS", thread_ts=first["ts"])] == [
        first["ts"],
        reply["ts"],
    ]
    # blocks arrive decoded in the call record whatever the encoding
    post = fake.calls_to("chat.postMessage")[0]
    assert post.params["blocks"][1]["elements"][0]["action_id"] == "approve"
    assert post.token == BOT_TOKEN

    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C0OPS", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


async def test_form_encoded_bodies_and_unknown_fields(fake: FakeSlack) -> None:
    form = {
        "channel": "C0OPS",
        "text": "hi",
        "team_id": "T0FAKETEAM",  # unknown to the method: tolerated
        "blocks": json.dumps(APPROVE_BLOCKS),
        "token": BOT_TOKEN,  # legacy: token in the body
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(fake.api_url + "chat.postMessage", data=form) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200 and body["ok"], body
    assert fake.messages("C0OPS")[0].blocks == APPROVE_BLOCKS
    assert fake.calls[-1].params["team_id"] == "T0FAKETEAM"


async def test_auth_and_method_errors_answer_200_with_ok_false(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as http:

        async def call(method: str, token: str | None) -> tuple[int, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.post(
                fake.api_url + method, json={"channel": "C1", "text": "x"}, headers=headers
            ) as resp:
                return resp.status, await resp.json()

        assert await call("chat.postMessage", None) == (200, {"ok": False, "error": "not_authed"})
        assert (await call("chat.postMessage", "xoxb-wrong"))[1]["error"] == "invalid_auth"
        assert (await call("chat.postMessage", APP_TOKEN))[1]["error"] == "not_allowed_token_type"
        assert (await call("apps.connections.open", BOT_TOKEN))[1][
            "error"
        ] == "not_allowed_token_type"
        status, body = await call("chat.nope", BOT_TOKEN)
        assert (status, body["error"]) == (200, "unknown_method")


async def test_channel_allow_list_and_lookups() -> None:
    async with FakeSlack(
        channels={"C0OPS": "ops", "C0ARCH": "old"}, usergroups={"S0PLATFORM": ["U1", "U2"]}
    ) as fake:
        fake.add_channel("C0PRIV", "secret", is_private=True, is_member=False)
        fake.add_user("U0ALICE", "alice", "Alice Example", is_admin=True)
        client = AsyncWebClient(token="xoxb-any", base_url=fake.api_url)

        for channel, error in (("C0NOPE", "channel_not_found"), ("C0PRIV", "not_in_channel")):
            with pytest.raises(SlackApiError) as err:
                await client.chat_postMessage(channel=channel, text="x")
            assert err.value.response["error"] == error
        by_name = await client.chat_postMessage(channel="#ops", text="by name")
        assert by_name["channel"] == "C0OPS"

        info = await client.conversations_info(channel="C0PRIV")
        assert info["channel"]["name"] == "secret" and info["channel"]["is_private"]
        user = await client.users_info(user="U0ALICE")
        assert user["user"]["real_name"] == "Alice Example" and user["user"]["is_admin"]
        assert (await client.users_info(user="U0BOB"))["user"]["name"] == "u0bob"
        group = await client.usergroups_users_list(usergroup="S0PLATFORM")
        assert group["users"] == ["U1", "U2"]
        with pytest.raises(SlackApiError) as err:
            await client.usergroups_users_list(usergroup="S0NOPE")
        assert err.value.response["error"] == "no_such_subteam"

        link = await client.chat_getPermalink(channel="C0OPS", message_ts=by_name["ts"])
        assert link["permalink"].endswith("/archives/C0OPS/p1700000000000100")
        eph = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
        assert fake.ephemerals("C0OPS", user="U0ALICE")[0].message_ts == eph["message_ts"]
        view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
        opened = await client.views_open(trigger_id="123.456.abc", view=view)
        assert opened["view"]["id"].startswith("V")
        await client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []})
        assert fake.calls_to("views.publish")[0].params["view"]["type"] == "home"


async def test_block_kit_limits_are_enforced(fake: FakeSlack) -> None:
    client = client_for(fake)
    too_many = [{"type": "divider"}] * 51
    long_value = [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "a",
                    "text": {"type": "plain_text", "text": "A"},
                    "value": "v" * 2001,
                }
            ],
        }
    ]
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    for blocks in (too_many, long_value, long_section):
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="t", blocks=blocks)
        assert err.value.response["error"] == "invalid_blocks"
        assert err.value.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning, match="`text`"):
        await client.chat_postMessage(channel="C1")
    assert err.value.response["error"] == "no_text"
    assert fake.messages() == []


# --------------------------------------------------------------------------------------
# Fault injection and slack_sdk's retry handlers


async def test_429_is_retried_after_retry_after_and_posts_once(fake: FakeSlack) -> None:
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    fake.rate_limit_next(1, retry_after=1, methods=["chat.postMessage"])
    started = time.monotonic()
    await client.chat_postMessage(channel="C0OPS", text="once")
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    attempts = fake.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].response == {"ok": False, "error": "ratelimited"}
    assert [m.text for m in fake.messages("C0OPS")] == ["once"]


async def test_429_without_retry_handler_surfaces_retry_after(fake: FakeSlack) -> None:
    fake.rate_limit_next(1, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).chat_postMessage(channel="C0OPS", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"


async def test_500_is_retried_by_server_error_handler(fake: FakeSlack) -> None:
    handler = AsyncServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    client = client_for(fake, retry_handlers=[handler])
    fake.fail_next(1, status=500)
    await client.chat_postMessage(channel="C0OPS", text="after a 500")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [500, 200]
    assert len(fake.messages("C0OPS")) == 1

    fake.fail_next(2, status=503)  # more failures than retries: the error surfaces
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C0OPS", text="lost")
    assert err.value.response.status_code == 503
    assert len(fake.messages("C0OPS")) == 1


async def test_outage_window_then_recovery(fake: FakeSlack) -> None:
    fake.outage(0.3, status=503)
    client = client_for(fake)
    with pytest.raises(SlackApiError):
        await client.auth_test()
    patient = client_for(
        fake,
        retry_handlers=[
            AsyncServerErrorRetryHandler(
                max_retry_count=20, interval_calculator=FixedValueRetryIntervalCalculator(0.05)
            )
        ],
    )
    await patient.chat_postMessage(channel="C0OPS", text="made it")
    statuses = [c.status for c in fake.calls_to("chat.postMessage")]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {503}


async def test_stop_start_keeps_port_for_connection_level_outage(fake: FakeSlack) -> None:
    url = fake.api_url
    await fake.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await client_for(fake, retry_handlers=[]).auth_test()
    await fake.start()
    assert fake.api_url == url
    assert (await client_for(fake).auth_test())["ok"]


async def test_post_rate_limit_per_channel() -> None:
    async with FakeSlack(post_rate=1.0, post_burst=2) as fake:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
        await client.chat_postMessage(channel="C1", text="1")
        await client.chat_postMessage(channel="C1", text="2")
        await client.chat_postMessage(channel="C2", text="other channel")
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="3")
        assert err.value.response.status_code == 429
        assert int(err.value.response.headers["Retry-After"]) >= 1


# --------------------------------------------------------------------------------------
# files (v2 upload path), response_url, waiting


async def test_files_upload_v2_png(fake: FakeSlack) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    first = await client_for(fake).chat_postMessage(channel="C0OPS", text="query")
    result = await client_for(fake).files_upload_v2(
        channel="C0OPS",
        thread_ts=first["ts"],
        filename="graph.png",
        content=png,
        title="up{job='node'}",
        initial_comment="the graph",
    )
    assert result["file"]["mimetype"] == "image/png"
    (uploaded,) = fake.uploaded_files("C0OPS")
    assert uploaded.content == png and uploaded.thread_ts == first["ts"]
    share = fake.messages("C0OPS", thread_ts=first["ts"])[-1]
    assert share.text == "the graph" and share.files and share.files[0]["name"] == "graph.png"


async def test_response_url_records_and_applies_respond(fake: FakeSlack) -> None:
    posted = await client_for(fake).chat_postMessage(channel="C0OPS", text="pending")
    url = fake.new_response_url("C0OPS", posted["ts"])
    hook = AsyncWebhookClient(url)
    assert (await hook.send(text="only you", response_type="ephemeral")).status_code == 200
    await hook.send(text="approved", replace_original=True)
    assert [r.body["text"] for r in fake.responses(url)] == ["only you", "approved"]
    assert fake.ephemerals("C0OPS")[0].text == "only you"
    assert fake.messages("C0OPS")[0].text == "approved"
    for _ in range(3):
        await hook.send(text="again")
    assert (await hook.send(text="sixth")).status_code == 404  # used_url, like Slack


async def test_wait_for_returns_value_and_times_out_with_summary(fake: FakeSlack) -> None:
    client = client_for(fake)
    await client.chat_postMessage(channel="C1", text="a")
    found = await fake.wait_for(lambda: fake.messages("C1"), timeout=1)
    assert found[0].text == "a"
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await fake.wait_for(lambda: fake.messages("C2"), timeout=0.05)


def test_threaded_mode_serves_blocking_web_client() -> None:
    """A sync WebClient (as an RQ worker would use) against the fake's own thread."""
    with FakeSlack() as fake:
        client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
        client.chat_postMessage(channel="C0OPS", text="from a worker")
        msg = fake.wait_for_sync(lambda: fake.messages("C0OPS"), timeout=1)[0]
        assert msg.text == "from a worker"


async def test_threaded_mode_from_async_test_including_socket_mode() -> None:
    """Helpers hop to the fake's own loop when it runs in a thread."""
    fake = FakeSlack(app_token=APP_TOKEN)
    fake.start_in_thread()
    try:
        app = bolt_app(fake)

        @app.command("/infraai")
        async def command(ack: Any) -> None:
            await ack("pong")

        async with socket_mode(app):
            envelope_id = await fake.socket_send_command({"text": "ping"})
            assert (await fake.wait_for_ack(envelope_id)).payload == {"text": "pong"}
        await client_for(fake).chat_postMessage(channel="C1", text="hello")
        assert (await fake.wait_for_message("C1")).text == "hello"
    finally:
        fake.stop_in_thread()


# --------------------------------------------------------------------------------------
# signing helpers


def test_sign_matches_slack_sdk_verifier() -> None:
    body = slash_command_body("status", "U0ALICE", "C0OPS", "http://127.0.0.1:1/r")
    headers = sign(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert verify(SECRET, body, headers)
    assert not verify(SECRET, body + b"x", headers)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verify(SECRET, body, stale)
    assert signed_headers(SECRET, url_verification_body("c"))["Content-Type"] == (
        "application/json"
    )


# --------------------------------------------------------------------------------------
# Bolt over HTTP


BoltPost = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, str]]]


@asynccontextmanager
async def bolt_http(app: AsyncApp, *, own_route: bool = False) -> AsyncIterator[BoltPost]:
    """Serve ``app`` on 127.0.0.1 and yield ``post(body, headers) -> (status, text)``.

    ``own_route`` mounts it the way InfraAI's HTTP app does (a route on our own aiohttp
    application using Bolt's adapter helpers) instead of Bolt's ``web_app()``.
    """
    if own_route:
        web_app = web.Application()

        async def slack_events(request: web.Request) -> web.Response:
            bolt_response = await app.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(bolt_response)

        web_app.router.add_post("/slack/events", slack_events)
    else:
        web_app = app.web_app(path="/slack/events")
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
                url = f"http://127.0.0.1:{port}/slack/events"
                async with http.post(url, data=body, headers=headers) as resp:
                    return resp.status, await resp.text()

            yield post
    finally:
        await runner.cleanup()


def bolt_app(fake: FakeSlack) -> AsyncApp:
    return AsyncApp(client=client_for(fake), signing_secret=SECRET)


@pytest.mark.parametrize("own_route", [False, True])
async def test_bolt_slash_command_signed_and_acked(fake: FakeSlack, own_route: bool) -> None:
    app = bolt_app(fake)
    seen: list[dict[str, Any]] = []

    @app.command("/infraai")
    async def command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(command)
        await respond(f"you said {command['text']}")

    response_url = fake.new_response_url("C0OPS")
    body = slash_command_body("status", "U0ALICE", "C0OPS", response_url)
    async with bolt_http(app, own_route=own_route) as post:
        status, _ = await post(body, signed_headers(SECRET, body))
        assert status == 200
        reply = await fake.wait_for(lambda: fake.responses(response_url))
    assert seen[0]["text"] == "status" and seen[0]["user_id"] == "U0ALICE"
    assert reply[0].body["text"] == "you said status"


async def test_bolt_rejects_bad_and_stale_signatures(fake: FakeSlack) -> None:
    app = bolt_app(fake)
    ran: list[str] = []

    @app.command("/infraai")
    async def command(ack: Any) -> None:
        ran.append("x")
        await ack()

    body = slash_command_body("status", "U0ALICE", "C0OPS", fake.new_response_url())
    async with bolt_http(app) as post:
        bad = signed_headers("not-the-secret", body)
        assert await post(body, bad) == (401, '{"error": "invalid request"}')
        stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)
        assert (await post(body, stale))[0] == 401
        unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await post(body, unsigned))[0] == 401
    assert ran == []


async def test_bolt_url_verification_echo(fake: FakeSlack) -> None:
    body = url_verification_body("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    async with bolt_http(bolt_app(fake)) as post:
        status, text = await post(body, signed_headers(SECRET, body))
    assert status == 200
    assert json.loads(text) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_bolt_block_actions_click_updates_message(fake: FakeSlack) -> None:
    app = bolt_app(fake)
    clicks: list[dict[str, Any]] = []

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any) -> None:
        await ack()
        clicks.append(action)
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["container"]["message_ts"],
            text=f"Approved by <@{body['user']['id']}>",
            blocks=[],
        )

    posted = await client_for(fake).chat_postMessage(
        channel="C0OPS", text="proposal 42", blocks=APPROVE_BLOCKS
    )
    message = fake.messages("C0OPS")[0]
    body = block_actions_body(
        "approve",
        message.button_values()["approve"],
        "U0ALICE",
        "C0OPS",
        posted["ts"],
        fake.new_response_url("C0OPS", posted["ts"]),
        message.to_api(),
    )
    async with bolt_http(app) as post:
        status, _ = await post(body, signed_headers(SECRET, body))
        assert status == 200
        updated = await fake.wait_for_message("C0OPS", lambda m: m.text.startswith("Approved"))
    assert clicks[0]["value"] == "42" and clicks[0]["block_id"] == "decision"
    assert updated.text == "Approved by <@U0ALICE>" and updated.blocks is None


async def test_bolt_app_mention_says_in_thread_and_calls_auth_test(fake: FakeSlack) -> None:
    app = bolt_app(fake)

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any) -> None:
        await say(text="looking", thread_ts=event["ts"])

    event = app_mention_event("<@U0FAKEBOT> why is api down?", channel_id="C0OPS")
    body = event_callback_body(event)
    async with bolt_http(app) as post:
        status, _ = await post(body, signed_headers(SECRET, body))
        assert status == 200
        reply = await fake.wait_for_message("C0OPS")
    assert reply.thread_ts == event["ts"] and reply.text == "looking"
    assert fake.calls_to("auth.test", ok_only=True)  # Bolt's lazy single-team authorization


# --------------------------------------------------------------------------------------
# Socket Mode


@asynccontextmanager
async def socket_mode(app: AsyncApp) -> AsyncIterator[AsyncSocketModeHandler]:
    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        yield handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_socket_mode_event_command_and_click_round_trip(fake: FakeSlack) -> None:
    app = bolt_app(fake)
    retry_nums: list[list[str] | None] = []

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any, request: Any) -> None:
        retry_nums.append(request.headers.get("x-slack-retry-num"))
        await say(text="on it", thread_ts=event["ts"])

    @app.command("/infraai")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"status for {command['user_id']}")

    @app.action("deny")
    async def deny(ack: Any) -> None:
        await ack()

    async with socket_mode(app):
        await fake.wait_for_socket()
        assert fake.calls_to("apps.connections.open", ok_only=True)[0].token == APP_TOKEN

        event = app_mention_event("<@U0FAKEBOT> hi", channel_id="C0OPS")
        envelope_id = await fake.socket_send_event(event)
        ack = await fake.wait_for_ack(envelope_id)
        assert ack.payload is None
        reply = await fake.wait_for_message("C0OPS")
        assert reply.thread_ts == event["ts"]
        # The trap: a first delivery carries retry_attempt 0, which Bolt exposes as "0".
        assert retry_nums == [["0"]]
        assert fake.socket_sent[0]["type"] == "events_api"

        envelope_id = await fake.socket_send_command({"text": "status", "user_id": "U0ALICE"})
        ack = await fake.wait_for_ack(envelope_id)
        assert ack.payload == {"text": "status for U0ALICE"}

        click = block_actions_payload("deny", "42", message_ts="1700000000.000100")
        envelope_id = await fake.socket_send_interactive(click)
        assert (await fake.wait_for_ack(envelope_id)).envelope_id == envelope_id


async def test_socket_mode_unhandled_envelope_is_not_acked(fake: FakeSlack) -> None:
    """Bolt answers 404 internally for an unmatched request and sends no ack at all."""
    app = bolt_app(fake)
    async with socket_mode(app):
        envelope_id = await fake.socket_send_command({"text": "x", "command": "/other"})
        with pytest.raises(TimeoutError):
            await fake.wait_for_ack(envelope_id, timeout=0.3)


async def test_socket_mode_reconnects_after_disconnect_message(fake: FakeSlack) -> None:
    app = bolt_app(fake)

    @app.event("app_mention")
    async def mention(ack: Any) -> None:
        await ack()

    async with socket_mode(app):
        await fake.wait_for_socket()
        await fake.socket_disconnect()
        await fake.wait_for(lambda: len(fake.calls_to("apps.connections.open")) == 2)
        await fake.wait_for_socket()
        envelope_id = await fake.socket_send_event(app_mention_event("<@U0FAKEBOT> still?"))
        await fake.wait_for_ack(envelope_id)
