"""The whole bot on loopback for end-to-end tests: the real HTTP app and Bolt app (HTTP mode),
the real Slack notifier and outbox drain against the fake Slack Web API, a real database,
and RQ on real Redis (or in-process execution)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from bot.http.app import create_app
from bot.slack.app import build_app, mount
from bot.slack.authorizer import SlackAuthorizer
from bot.slack.notifier import SlackNotifier
from core.policy.spec import PolicySpec
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import block_actions_body, signed_headers, slash_command_body
from tests.helpers import install_policies
from tests.redis_db import claim_redis_url

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0OPS"
APPROVER = "U0ALICE"
STRANGER = "U0MALLORY"
REDIS_URL = claim_redis_url()


@dataclass
class Stack:
    runtime: Runtime
    slack: FakeSlack
    client: TestClient[Any, Any]

    async def post_alerts(self, body: dict[str, Any]) -> Any:
        response = await self.client.post("/alerts", data=json.dumps(body))
        assert response.status == 200, await response.text()
        return await response.json()

    async def signed(self, body: bytes) -> Any:
        return await self.client.post(
            "/slack/events", data=body, headers=signed_headers(SECRET, body)
        )

    async def click(
        self, action_id: str, value: str, user: str = APPROVER, message_ts: str | None = None
    ) -> Any:
        message = None
        if message_ts is not None:
            found = self.slack.message(CHANNEL, message_ts)
            message = found.to_api() if found is not None else None
        body = block_actions_body(
            action_id,
            value,
            user_id=user,
            channel_id=CHANNEL,
            message_ts=message_ts or "1.0",
            response_url=self.slack.new_response_url(),
            message=message,
        )
        return await self.signed(body)

    async def command(self, text: str, user: str = APPROVER) -> Any:
        body = slash_command_body(
            text, user_id=user, channel_id=CHANNEL, response_url=self.slack.new_response_url()
        )
        return await self.signed(body)


async def flush_redis(url: str = REDIS_URL) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    except OSError as exc:
        pytest.skip(
            "Redis is not answering on 127.0.0.1:6379; start it with `redis-server --daemonize "
            f"yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no` ({exc})"
        )
    finally:
        await redis.aclose()


async def make_stack(
    database_url: str, *policies: PolicySpec, redis: bool = True, **settings: Any
) -> AsyncIterator[Stack]:
    if redis:
        await flush_redis()
    fake = FakeSlack(bot_token=BOT_TOKEN)
    await fake.start()
    fake.add_channel(CHANNEL, "ops")
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.api_url,
        "infraai_channel": CHANNEL,
        "infraai_approvers": (APPROVER,),
        "redis_url": REDIS_URL if redis else None,
    }
    values.update(settings)
    config = make_settings(database_url, **values)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
    runtime = Runtime.build(config, authorizer=SlackAuthorizer(client))
    runtime.attach_notifier(SlackNotifier(client))
    if policies:
        await install_policies(runtime, *policies)
    app = create_app(runtime)
    mount(app, build_app(runtime, client), secret=SECRET)
    runtime.start_background(maintenance_seconds=0.2)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield Stack(runtime, fake, test_client)
    await runtime.close()
    await fake.stop()
