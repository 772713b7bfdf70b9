"""Socket Mode end to end: `bot.serve.serve()` with SLACK_APP_TOKEN opens the fake's loopback
websocket (apps.connections.open → ws://), and the whole flow runs over it: alert → message →
click (an `interactive` envelope) → ack → job in Redis → message updated; slash commands
and mentions arrive as envelopes too, and Slack's redeliveries are acked and dropped."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis import Redis
from rq import Queue

from bot.serve import serve
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack, Message
from tests.fakes.slack_signing import app_mention_event, block_actions_payload
from tests.helpers import count, crashloop, eventually, payload, rows
from tests.stack import APPROVER, BOT_TOKEN, CHANNEL, REDIS_URL, STRANGER, flush_redis

pytestmark = pytest.mark.integration

APP_TOKEN = "xapp-1-A0FAKEAPP-1-test"
# Not tests.stack's DB 15: other suites flush that one while they run.
POLICIES = """
policies:
  - name: restart-crashlooping-pod
    matchers: ['alertname="KubePodCrashLooping"']
    action: k8s.restart_pod
    params:
      namespace: "{{ labels.namespace }}"
      pod: "{{ labels.pod }}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SocketBot:
    slack: FakeSlack
    http: aiohttp.ClientSession
    base: str
    db: Runtime  # a second view of the bot's database, for assertions

    async def post_alerts(self, body: dict[str, Any]) -> Any:
        async with self.http.post(f"{self.base}/alerts", json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def click(self, action_id: str, message: Message, user: str = APPROVER) -> str:
        value = message.button_values()[action_id]
        body = block_actions_payload(
            action_id,
            value,
            user_id=user,
            channel_id=message.channel,
            message_ts=message.ts,
            response_url=self.slack.new_response_url(message.channel, message.ts),
            message=message.to_api(),
        )
        return await self.slack.socket_send_interactive(body)


@pytest.fixture
async def bot(pg_db: str, tmp_path: Path) -> AsyncIterator[SocketBot]:
    await flush_redis(REDIS_URL)
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    fake = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    await fake.start()
    fake.add_channel(CHANNEL, "ops")
    port = free_port()
    settings = make_settings(
        pg_db,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_signing_secret=None,
        slack_api_url=fake.api_url,
        infraai_channel=CHANNEL,
        infraai_approvers=(APPROVER,),
        redis_url=REDIS_URL,
        infraai_port=port,
        infraai_policies=policies,
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve(settings, stop=stop, console=False))
    db = Runtime.build(make_settings(pg_db))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:

        async def healthy() -> bool:
            if server.done():
                server.result()  # start-up failed: raise it here
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as response:
                    return response.status == 200
            return False

        await eventually(healthy, bool, within=15, what="infraai serve listening")
        await fake.wait_for_socket(1, timeout=10)
        yield SocketBot(fake, http, base, db)
    stop.set()
    assert await asyncio.wait_for(server, 15) == 0
    await db.close()
    await fake.stop()


def queued_job_ids() -> list[str]:
    return list(Queue("infraai", connection=Redis.from_url(REDIS_URL)).job_ids)


async def test_serve_connects_over_socket_mode_and_not_http(bot: SocketBot) -> None:
    assert bot.slack.calls_to("apps.connections.open", ok_only=True)
    [call] = bot.slack.calls_to("apps.connections.open")
    assert call.token == APP_TOKEN
    async with bot.http.post(f"{bot.base}/slack/events", data=b"{}") as response:
        assert response.status == 404  # Socket Mode: no Request URL is served


async def test_alert_to_message_to_click_to_job(bot: SocketBot) -> None:
    assert await bot.post_alerts(payload(crashloop())) == {"received": 1, "proposals": 1}
    message = await bot.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )
    assert message.button_values() == {"proposal_approve": "1", "proposal_deny": "1"}

    envelope = await bot.click("proposal_approve", message)
    ack = await bot.slack.wait_for_ack(envelope, timeout=5)
    assert ack.payload is None  # a block_actions ack carries nothing
    updated = await bot.slack.wait_for(
        lambda: (m := bot.slack.message(CHANNEL, message.ts)) and not m.button_values() and m,
        timeout=10,
    )
    assert f"<@{APPROVER}>" in updated.all_text()
    await bot.slack.wait_for(lambda: queued_job_ids() == ["proposal-1"], timeout=10)
    [proposal] = await rows(bot.db, "SELECT status, decided_by FROM proposals")
    assert proposal == {"status": "approved", "decided_by": APPROVER}


async def test_a_stranger_clicking_over_the_socket_is_refused(bot: SocketBot) -> None:
    await bot.post_alerts(payload(crashloop()))
    message = await bot.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )
    envelope = await bot.click("proposal_approve", message, user=STRANGER)
    await bot.slack.wait_for_ack(envelope, timeout=5)
    refusal = await bot.slack.wait_for(
        lambda: next(iter(bot.slack.ephemerals(CHANNEL, STRANGER)), None), timeout=10
    )
    assert "may not approve proposal #1" in refusal.text
    assert queued_job_ids() == []
    assert await count(bot.db, "audit_events", "verb = 'approval.refused'") == 1


async def test_slash_command_over_the_socket(bot: SocketBot) -> None:
    url = bot.slack.new_response_url(CHANNEL)
    envelope = await bot.slack.socket_send_command(
        {"text": "policy list", "user_id": STRANGER, "response_url": url}
    )
    await bot.slack.wait_for_ack(envelope, timeout=5)
    [answer] = await bot.slack.wait_for(lambda: bot.slack.responses(url), timeout=10)
    assert answer.body["response_type"] == "ephemeral"
    assert "restart-crashlooping-pod" in str(answer.body)

    url = bot.slack.new_response_url(CHANNEL)
    envelope = await bot.slack.socket_send_command(
        {"text": "pause", "user_id": STRANGER, "response_url": url}
    )
    [refused] = await bot.slack.wait_for(lambda: bot.slack.responses(url), timeout=10)
    assert refused.body["response_type"] == "ephemeral"
    assert "Only approvers" in str(refused.body)


async def test_mentions_are_answered_and_redeliveries_dropped(bot: SocketBot) -> None:
    first_ts, retried_ts = "1700000010.000100", "1700000011.000100"
    # retry_attempt 1: Slack redelivering an event it thinks failed → ack, do nothing.
    retried = await bot.slack.socket_send_event(
        app_mention_event("<@U0FAKEBOT> help", ts=retried_ts),
        retry_attempt=1,
        retry_reason="timeout",
    )
    await bot.slack.wait_for_ack(retried, timeout=5)
    # retry_attempt 0 is a first delivery (Bolt maps it to x-slack-retry-num: 0).
    first = await bot.slack.socket_send_event(
        app_mention_event("<@U0FAKEBOT> help", ts=first_ts), retry_attempt=0
    )
    await bot.slack.wait_for_ack(first, timeout=5)
    reply = await bot.slack.wait_for_message(CHANNEL, lambda m: m.thread_ts == first_ts, timeout=10)
    assert "InfraAI commands" in reply.all_text()
    assert [m.thread_ts for m in bot.slack.messages(CHANNEL)] == [first_ts]


async def test_the_bot_reconnects_when_slack_asks_it_to(bot: SocketBot) -> None:
    opened = len(bot.slack.calls_to("apps.connections.open", ok_only=True))
    await bot.slack.socket_disconnect("refresh_requested")
    await bot.slack.wait_for(
        lambda: len(bot.slack.calls_to("apps.connections.open", ok_only=True)) > opened,
        timeout=15,
    )
    await bot.slack.wait_for_socket(1, timeout=15)
    # Still working over the new connection.
    url = bot.slack.new_response_url(CHANNEL)
    await bot.slack.socket_send_command({"text": "help", "user_id": APPROVER, "response_url": url})
    await bot.slack.wait_for(lambda: bot.slack.responses(url), timeout=10)
