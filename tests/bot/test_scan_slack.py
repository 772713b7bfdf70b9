"""`/infraai scan` and `/infraai assets` in Slack: signed slash commands into the real Bolt
app, the real nmap on a port this test opens on 127.0.0.1, answers read at the fake Slack.

An accepted scan is a root message in the channel with its progress and summary in the
thread; a refused one is an ephemeral answer and nothing in the channel; a bot that cannot
post in the channel answers with the summary as the ephemeral reply.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import pytest

from tests.bot.test_commands import ephemeral, run, text_of
from tests.discovery.helpers import label, listening, port_of, require_nmap
from tests.helpers import count, policy
from tests.stack import APPROVER, CHANNEL, Stack, make_stack

pytestmark = pytest.mark.integration

OTHER = "C0ELSEWHERE"


@pytest.fixture
async def stack(sqlite_db: str) -> AsyncIterator[Stack]:
    require_nmap()
    async for s in make_stack(sqlite_db, policy(), redis=False):
        s.slack.add_channel(OTHER, "elsewhere", is_member=False)
        yield s


def thread_of(stack: Stack, root_ts: str) -> list[str]:
    return [
        html.unescape(m.text)
        for m in stack.slack.messages(CHANNEL, thread_ts=root_ts)
        if m.ts != root_ts
    ]


async def test_a_scan_is_a_root_message_with_progress_and_summary_in_its_thread(
    stack: Stack,
) -> None:
    with listening() as [s]:
        port = port_of(s)
        assert (await stack.command(f"scan 127.0.0.1 {port}")).status == 200
        root = await stack.slack.wait_for_message(
            CHANNEL, lambda m: "asked for a scan" in m.text, timeout=20
        )
        assert root.text == (
            f"<@{APPROVER}> asked for a scan: 🔎 scanning 127.0.0.1, ports {port}…"
        )
        found = await stack.slack.wait_for(
            lambda: (t := thread_of(stack, root.ts)) and len(t) >= 2 and t, timeout=20
        )
    progress, summary = found
    assert progress == f"1/1 scanned:\n127.0.0.1 (localhost): {label(port)}"
    assert summary.startswith(f"✅ Scan #1 of 127.0.0.1 ports {port}: 1 of 1 hosts up")
    assert await count(stack.runtime, "assets") == 1
    # No ephemeral answer besides: the thread is the answer.
    assert stack.slack.responses() == []

    listed = await run(stack, "assets")
    assert ephemeral(listed)
    shown = text_of(listed)
    assert "1 host in 1 subnet" in shown and "127.0.0.0/24" in shown
    assert f"`127.0.0.1` localhost — {label(port)}" in shown


@pytest.mark.parametrize(
    "line", ["10.0.0.1", "-oN out.txt", "127.0.0.1;id", "127.0.0.1 -iL /etc/passwd"]
)
async def test_a_refused_scan_is_an_ephemeral_answer_and_nothing_in_the_channel(
    stack: Stack, line: str
) -> None:
    post = await run(stack, f"scan {line}")
    assert ephemeral(post)
    assert "usage: " in text_of(post).lower() or "scan <host|cidr>" in text_of(post)
    assert stack.slack.messages(CHANNEL) == []
    assert await count(stack.runtime, "scans") == 0


async def test_where_the_bot_cannot_post_the_summary_is_the_ephemeral_reply(
    stack: Stack,
) -> None:
    from tests.fakes.slack_signing import slash_command_body

    url = stack.slack.new_response_url(OTHER)
    body = slash_command_body(
        "scan 127.0.0.1 22", user_id=APPROVER, channel_id=OTHER, response_url=url
    )
    assert (await stack.signed(body)).status == 200
    [post] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=20)
    assert ephemeral(post) and "Scan #1 of 127.0.0.1 ports 22" in text_of(post)
    assert stack.slack.messages(OTHER) == []


async def test_hostnames_from_the_network_reach_slack_escaped(stack: Stack) -> None:
    from core.db.types import utcnow
    from core.discovery import store

    host = {
        "address": "127.0.0.5",
        "up": True,
        "hostname": "<!channel>",
        "mac": None,
        "vendor": "A&B <x>",
        "ports": [{"port": 80, "protocol": "tcp", "service": "http"}],
    }
    async with stack.runtime.sessions() as session, session.begin():
        await store.upsert_up(session, [host], utcnow())
    post = await run(stack, "assets")
    raw = str(post.body)
    assert "<!channel>" not in raw and "&lt;!channel&gt;" in raw
    assert "A&amp;B &lt;x&gt;" in raw
