"""The outbox drain against the fake Slack Web API: outages and rate limits delay messages and
never drop or double them, each channel keeps its order and its pace, alert storms become a
few grouped messages, and two notifier replicas on one PostgreSQL database send nothing twice.

Most tests drive `OutboxDrain.drain_once(now=…)` with a clock they advance themselves, so a
one-hour outage takes milliseconds and no test waits for a real Retry-After. The storm runs
the whole bot in real time (it is about real-time pacing).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from core.alerts.webhook import parse_payload
from core.approvals import Approvals, ListAuthorizer
from core.cards import ProposalCard
from core.db.models import Proposal
from core.db.types import utcnow
from core.maintenance import run_maintenance
from core.notifier import MessageRef, OutboxDrain
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.slack import Call, FakeSlack, Message
from tests.helpers import (
    alert,
    count,
    crashloop,
    eventually,
    install_policies,
    payload,
    policy,
    rows,
)
from tests.stack import CHANNEL as STACK_CHANNEL
from tests.stack import REDIS_URL, Stack, flush_redis, make_stack

BOT_TOKEN = "xoxb-outbox-test"
CHANNELS = ("C0ALPHA", "C0BRAVO", "C0CHARLIE")


def channel_policy(channel: str, **overrides: Any) -> Any:
    return policy(
        name=f"restart-{channel.lower()}",
        matchers=[f'team="{channel}"'],
        channel=channel,
        **overrides,
    )


def channel_alert(channel: str, pod: str) -> dict[str, Any]:
    return alert(
        {
            "alertname": "KubePodCrashLooping",
            "team": channel,
            "namespace": "prod",
            "pod": pod,
            "severity": "critical",
        }
    )


@dataclass
class Outbox:
    runtime: Runtime
    slack: FakeSlack
    drain: OutboxDrain
    clock: datetime = field(default_factory=utcnow)

    async def alert(self, channel: str, pod: str) -> None:
        """One alert → one proposal for the channel's policy (one ingest: own created_at)."""
        outcome = await self.runtime.alerts.ingest(
            parse_payload(payload(channel_alert(channel, pod)))
        )
        assert outcome.proposals == 1

    async def tick(self, seconds: float = 0.0, *, drain: OutboxDrain | None = None) -> int:
        """Advance the drain's clock and run one pass."""
        self.clock += timedelta(seconds=seconds)
        return await (drain or self.drain).drain_once(now=self.clock)

    async def settle(self, step: float = 1.0, limit: int = 200) -> None:
        """Pass after pass (the clock advancing `step` each time) until nothing is unsent."""
        for _ in range(limit):
            if await unsent(self.runtime) == 0:
                return
            await self.tick(step)
        raise AssertionError(f"outbox not empty after {limit} passes: {await unsent(self.runtime)}")


async def unsent(runtime: Runtime) -> int:
    return await count(runtime, "notifications", "sent_at IS NULL")


def posts(slack: FakeSlack, channel: str | None = None, *, ok: bool = True) -> list[Call]:
    """chat.postMessage calls that succeeded (ok=True) or failed (ok=False)."""
    return [
        c
        for c in slack.calls_to("chat.postMessage")
        if c.ok == ok and (channel is None or c.params.get("channel") == channel)
    ]


def top_level(slack: FakeSlack, channel: str) -> list[Message]:
    return [m for m in slack.messages(channel) if m.thread_ts is None]


def proposal_ids_shown(message: Message) -> list[int]:
    """The proposal a single-proposal message is about (its buttons, else its header)."""
    values = message.button_values()
    if "proposal_approve" in values:
        return [int(values["proposal_approve"])]
    for block in message.blocks or []:
        if block.get("block_id", "").endswith("-header") and block["block_id"].startswith(
            "proposal-"
        ):
            return [int(block["block_id"].split("-")[1])]
    return []


async def slack_refs(runtime: Runtime) -> dict[int, tuple[str | None, str | None]]:
    found = await rows(runtime, "SELECT id, slack_channel, slack_ts FROM proposals ORDER BY id")
    return {r["id"]: (r["slack_channel"], r["slack_ts"]) for r in found}


async def assert_each_proposal_shown_once(outbox: Outbox) -> None:
    """Every proposal points at exactly one top-level message, every top-level message is
    referenced by a proposal (a duplicate post would be an orphan), and single-proposal
    messages are never repeated."""
    refs = await slack_refs(outbox.runtime)
    assert all(ts for _, ts in refs.values()), refs
    posted = {(m.channel, m.ts) for ch in CHANNELS for m in top_level(outbox.slack, ch)}
    assert posted == set(refs.values())
    shown = Counter(
        pid for ch in CHANNELS for m in top_level(outbox.slack, ch) for pid in proposal_ids_shown(m)
    )
    assert all(n == 1 for n in shown.values()), shown


def assert_channel_order(slack: FakeSlack, channel: str) -> None:
    """Top-level messages in a channel appear in the order their proposals were written."""
    firsts = [min(ids) for m in top_level(slack, channel) if (ids := proposal_ids_shown(m))]
    assert firsts == sorted(firsts), (channel, firsts)


class QueueOnly:
    """An executor that queues and never runs (the jobs' own messages are another test's)."""

    def __init__(self) -> None:
        self.queued: list[int] = []

    async def enqueue(self, proposal_id: int) -> str:
        self.queued.append(proposal_id)
        return "queued"

    async def ping(self) -> tuple[bool, str]:
        return True, "queue-only"

    async def close(self) -> None:
        return None


class CountingNotifier(SlackNotifier):
    """Counts the top-level posts this replica made."""

    posted = 0

    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef:
        ref = await super().post_proposal(card, channel)
        self.posted += 1
        return ref

    async def post_group(self, cards: Sequence[ProposalCard], channel: str) -> MessageRef:
        ref = await super().post_group(cards, channel)
        self.posted += 1
        return ref


async def build_outbox(
    database_url: str,
    slack: FakeSlack,
    notifier: type[SlackNotifier] = SlackNotifier,
    **drain_options: Any,
) -> tuple[Runtime, OutboxDrain]:
    runtime = Runtime.build(
        make_settings(database_url, infraai_channel=CHANNELS[0], infraai_approvers=("U0ALICE",))
    )
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    options: dict[str, Any] = {"pace_seconds": 0.0, "group_window": timedelta(0)}
    options.update(drain_options)
    drain = OutboxDrain(
        runtime.sessions,
        notifier(client),
        default_channel=CHANNELS[0],
        default_approvers=("U0ALICE",),
        **options,
    )
    runtime.drain = drain
    runtime.executor = QueueOnly()
    runtime.approvals = Approvals(
        runtime.sessions, runtime.executor, ListAuthorizer(), ("U0ALICE",)
    )
    return runtime, drain


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, channels={c: c.lower() for c in CHANNELS})
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def outbox(db_url: str, slack: FakeSlack) -> AsyncIterator[Outbox]:
    runtime, drain = await build_outbox(db_url, slack)
    await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
    yield Outbox(runtime, slack, drain)
    await runtime.close()


# --- outages --------------------------------------------------------------------------------


async def test_an_outage_then_a_rate_limit_delays_and_never_drops(outbox: Outbox) -> None:
    slack = outbox.slack
    for i in range(4):
        for channel in CHANNELS[:2]:
            await outbox.alert(channel, f"api-{i}")
    # Slack answers 500 for a long while: nothing goes out, each channel tries one row per
    # pass and backs off; no channel is given up on however long it lasts.
    slack.outage(3600, status=500)
    for _ in range(40):
        assert await outbox.tick(600) == 0
    assert posts(slack) == []
    failed = posts(slack, ok=False)
    assert len(failed) == 80  # one try per channel per pass: the rest waited behind it
    assert await unsent(outbox.runtime) == 8
    assert await count(outbox.runtime, "audit_events", "verb = 'notification.failed'") == 0

    # Then 429s with Retry-After: 30 s — honoured to the second.
    slack.outage(3600, status=429, retry_after=30)
    await outbox.tick(600)
    tries = len(posts(slack, ok=False))
    await outbox.tick(29)
    assert len(posts(slack, ok=False)) == tries  # still inside Retry-After: no call at all
    await outbox.tick(2)
    assert len(posts(slack, ok=False)) == tries + 2

    slack.clear_faults()
    await outbox.tick(31)
    await outbox.settle()
    assert len(posts(slack)) == 8
    await assert_each_proposal_shown_once(outbox)
    for channel in CHANNELS[:2]:
        assert_channel_order(slack, channel)
        assert len(top_level(slack, channel)) == 4
    [stats] = await rows(
        outbox.runtime, "SELECT max(attempts) AS most, min(attempts) AS least FROM notifications"
    )
    assert stats["least"] == 0 and stats["most"] >= 40  # rows behind the head never tried


async def test_a_rate_limited_channel_holds_back_only_itself(db_url: str) -> None:
    # Slack's own limit: one post per second per channel, no burst.
    slack = FakeSlack(
        bot_token=BOT_TOKEN, channels={c: c for c in CHANNELS}, post_rate=1.0, post_burst=1
    )
    await slack.start()
    runtime, drain = await build_outbox(db_url, slack)
    outbox = Outbox(runtime, slack, drain)
    try:
        await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
        for i in range(3):
            await outbox.alert(CHANNELS[0], f"a-{i}")
        await outbox.alert(CHANNELS[1], "b-0")
        # No pacing in this drain: the second post to ALPHA hits Slack's 429.
        await outbox.tick()
        assert [c.params["channel"] for c in posts(slack)] == [CHANNELS[0], CHANNELS[1]]
        [limited] = posts(slack, ok=False)
        assert limited.params["channel"] == CHANNELS[0] and limited.status == 429
        assert await unsent(runtime) == 2
        [waiting] = await rows(
            runtime,
            "SELECT attempts, last_error FROM notifications WHERE sent_at IS NULL AND attempts > 0",
        )
        assert waiting["attempts"] == 1 and "rate limited" in waiting["last_error"]

        # The fake's token bucket refills in real time: pass again until it has all gone.
        async def drained() -> int:
            await outbox.tick(1.0)
            return await unsent(runtime)

        await eventually(drained, lambda n: n == 0, within=10, what="ALPHA drained")
        assert len(posts(slack, CHANNELS[0])) == 3
        assert_channel_order(slack, CHANNELS[0])
        await assert_each_proposal_shown_once(outbox)
    finally:
        await runtime.close()
        await slack.stop()


async def test_connection_refused_is_an_outage_too(outbox: Outbox) -> None:
    await outbox.alert(CHANNELS[0], "api-1")
    await outbox.slack.stop()  # the port stays reserved; connecting is refused
    for _ in range(3):
        assert await outbox.tick(600) == 0
    [row] = await rows(outbox.runtime, "SELECT attempts, last_error, sent_at FROM notifications")
    assert row["attempts"] == 3 and row["sent_at"] is None
    assert "ClientConnectorError" in row["last_error"] or "Connect" in row["last_error"]
    await outbox.slack.start()
    await outbox.tick(600)
    await assert_each_proposal_shown_once(outbox)


async def test_updates_and_thread_replies_keep_their_place_after_an_outage(
    outbox: Outbox,
) -> None:
    slack = outbox.slack
    await outbox.alert(CHANNELS[0], "api-1")
    await outbox.tick()
    [first] = top_level(slack, CHANNELS[0])
    slack.outage(3600, status=503)
    # During the outage: #1 is approved (an update), #2 is proposed, #1 gets a thread reply.
    outcome = await outbox.runtime.approvals.decide(1, "U0ALICE", approve=True)
    assert outcome.ok
    await outbox.alert(CHANNELS[0], "api-2")
    async with outbox.runtime.sessions() as session, session.begin():
        from core.outbox import announce_in_thread

        announce_in_thread(session, 1, CHANNELS[0], "✅ Succeeded: deleted pod prod/api-1")
    for _ in range(5):
        await outbox.tick(600)
    slack.clear_faults()
    await outbox.tick(600)
    await outbox.settle()
    # In the order written: the update of #1, then #2's post, then #1's thread reply.
    ok = [c for c in slack.calls if c.ok and c.method in ("chat.update", "chat.postMessage")]
    sequence = [(c.method, c.params.get("thread_ts")) for c in ok]
    assert sequence == [
        ("chat.postMessage", None),  # #1, before the outage
        ("chat.update", None),  # #1 approved
        ("chat.postMessage", None),  # #2
        ("chat.postMessage", first.ts),  # the reply in #1's thread
    ]
    assert slack.message(CHANNELS[0], first.ts).button_values() == {}
    assert await unsent(outbox.runtime) == 0


@pytest.mark.integration
@pytest.mark.slow
async def test_the_running_bot_rides_out_a_slack_outage(stack: Stack) -> None:
    """Real time, the real drain task: Slack answers 500 for a second, then 429 with
    Retry-After: 1; every message arrives afterwards, in order, once."""
    slack = stack.slack
    # Two policies on each alert: four proposals, never three of one policy (no grouping).
    await install_policies(
        stack.runtime, policy(**{"continue": True}), policy(name="second", priority=20)
    )
    slack.outage(1.0, status=500)
    slack.rate_limit_next(1, retry_after=1, methods=["chat.postMessage"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    for pod in ("api-1", "api-2"):
        await stack.post_alerts(payload(crashloop(pod=pod)))

    async def shown() -> int:
        return len(top_level(slack, STACK_CHANNEL))

    await eventually(shown, lambda n: n == 4, within=30, what="four messages")
    assert loop.time() - started >= 2.0  # nothing got through the outage
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses[0] == 500 and 429 in statuses and statuses[-1] == 200
    assert [proposal_ids_shown(m) for m in top_level(slack, STACK_CHANNEL)] == [[1], [2], [3], [4]]
    assert len(posts(slack, STACK_CHANNEL)) == 4
    assert min(gaps(posts(slack, STACK_CHANNEL))) >= 0.95


# --- failures that are not outages ------------------------------------------------------------


async def test_a_channel_that_does_not_exist_is_given_up_on_loudly(outbox: Outbox) -> None:
    await install_policies(outbox.runtime, channel_policy("C0GONE"))
    await outbox.alert("C0GONE", "api-1")
    await outbox.alert(CHANNELS[0], "api-2")
    for _ in range(5):
        await outbox.tick(600)
    assert await unsent(outbox.runtime) == 0
    [gave_up] = await rows(
        outbox.runtime,
        "SELECT actor, subject, detail FROM audit_events WHERE verb = 'notification.failed'",
    )
    assert gave_up["actor"] == "notifier" and "channel_not_found" in str(gave_up["detail"])
    assert len(top_level(outbox.slack, CHANNELS[0])) == 1


class PoisonNotifier(SlackNotifier):
    """A notifier that crashes (not a Slack error: a bug) on one proposal."""

    def __init__(self, client: AsyncWebClient, poison: int) -> None:
        super().__init__(client)
        self.poison = poison

    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef:
        if card.id == self.poison:
            raise KeyError("a rendering bug")
        return await super().post_proposal(card, channel)


async def test_a_crashing_row_neither_blocks_nor_doubles_other_channels(
    db_url: str, slack: FakeSlack
) -> None:
    runtime = Runtime.build(make_settings(db_url, infraai_channel=CHANNELS[0]))
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    drain = OutboxDrain(
        runtime.sessions,
        PoisonNotifier(client, poison=2),
        pace_seconds=0.0,
        group_window=timedelta(0),
    )
    outbox = Outbox(runtime, slack, drain)
    try:
        await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
        await outbox.alert(CHANNELS[0], "a-1")
        await outbox.alert(CHANNELS[1], "b-1")  # proposal 2: the poison
        await outbox.alert(CHANNELS[2], "c-1")
        for _ in range(4):
            await outbox.tick(600)
        assert len(posts(slack)) == 2  # ALPHA and CHARLIE, once each
        assert await unsent(runtime) == 0
        assert await count(runtime, "audit_events", "verb = 'notification.failed'") == 1
    finally:
        await runtime.close()


# --- grouping ---------------------------------------------------------------------------------


async def test_a_burst_for_one_policy_becomes_one_message(db_url: str, slack: FakeSlack) -> None:
    runtime, drain = await build_outbox(db_url, slack, group_window=timedelta(seconds=10))
    outbox = Outbox(runtime, slack, drain)
    try:
        await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
        for i in range(12):
            await outbox.alert(CHANNELS[0], f"api-{i}")
        await outbox.alert(CHANNELS[1], "lonely")  # under the group threshold: its own message
        await outbox.tick()
        await outbox.tick()  # the thread's detail: the channel's next paced post
        [group] = top_level(slack, CHANNELS[0])
        assert set(group.button_values()) == {"group_approve", "group_deny"}
        assert "12 proposals" in group.all_text()
        [single] = top_level(slack, CHANNELS[1])
        assert proposal_ids_shown(single) == [13]
        refs = await slack_refs(runtime)
        assert {refs[i] for i in range(1, 13)} == {(CHANNELS[0], group.ts)}
        detail = [m for m in slack.messages(CHANNELS[0]) if m.thread_ts == group.ts]
        assert len(detail) == 1 and "#12" in detail[0].all_text()
        await assert_each_proposal_shown_once(outbox)
    finally:
        await runtime.close()


async def test_group_updates_coalesce_into_one_edit_per_pass(db_url: str, slack: FakeSlack) -> None:
    runtime, drain = await build_outbox(db_url, slack, group_window=timedelta(seconds=10))
    outbox = Outbox(runtime, slack, drain)
    try:
        await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
        for i in range(30):
            await outbox.alert(CHANNELS[0], f"api-{i}")
        await outbox.tick()
        [group] = top_level(slack, CHANNELS[0])
        for pid in range(1, 31):
            assert (await runtime.approvals.decide(pid, "U0ALICE", approve=pid % 2 == 0)).ok
        await outbox.tick()
        assert await unsent(runtime) == 0
        # Thirty decisions, one message to re-render: one chat.update shows them all.
        assert len(slack.calls_to("chat.update")) == 1
        shown = slack.message(CHANNELS[0], group.ts)
        assert shown.button_values() == {}
        assert "15 approved" in shown.all_text() and "15 denied" in shown.all_text()
    finally:
        await runtime.close()


# --- expiry ---------------------------------------------------------------------------------


async def test_expired_proposals_lose_their_buttons(outbox: Outbox) -> None:
    slack = outbox.slack
    await outbox.alert(CHANNELS[0], "api-1")
    await outbox.alert(CHANNELS[1], "api-2")
    await outbox.tick()
    [message] = top_level(slack, CHANNELS[0])
    assert message.button_values() == {"proposal_approve": "1", "proposal_deny": "1"}
    async with outbox.runtime.sessions() as session:
        last = await session.scalar(sa.select(sa.func.max(Proposal.expires_at)))
        expiry = await session.scalar(sa.select(Proposal.expires_at).where(Proposal.id == 2))
    assert last == expiry
    upkeep = await run_maintenance(outbox.runtime.sessions, outbox.runtime.executor, now=expiry)
    assert sorted(upkeep.expired) == [1, 2]
    await outbox.settle()
    shown = slack.message(CHANNELS[0], message.ts)
    assert shown.button_values() == {}
    assert "xpired" in shown.all_text()
    [reply] = [m for m in slack.messages(CHANNELS[0]) if m.thread_ts == message.ts]
    assert "Expired" in reply.text
    statuses = await rows(outbox.runtime, "SELECT status FROM proposals ORDER BY id")
    assert [r["status"] for r in statuses] == ["expired", "expired"]
    assert await count(outbox.runtime, "audit_events", "verb = 'proposal.expired'") == 2
    # Swept again: nothing more to do, nothing said twice.
    again = await run_maintenance(outbox.runtime.sessions, outbox.runtime.executor, now=expiry)
    assert again.expired == []
    await outbox.settle()
    assert len([m for m in slack.messages(CHANNELS[0]) if m.thread_ts == message.ts]) == 1


@pytest.mark.integration
async def test_the_bot_expires_a_group_and_its_buttons_go(stack: Stack) -> None:
    """The running bot's own maintenance sweep (every 0.2 s in the stack) expires them."""
    await stack.post_alerts(payload(*(crashloop(pod=f"api-{i}") for i in range(4))))
    group = await stack.slack.wait_for_message(
        STACK_CHANNEL, lambda m: "group_approve" in m.button_values(), timeout=10
    )
    async with stack.runtime.sessions() as session, session.begin():
        await session.execute(
            sa.text("UPDATE proposals SET expires_at = now() - interval '1 second'")
        )
    shown = await stack.slack.wait_for(
        lambda: (m := stack.slack.message(STACK_CHANNEL, group.ts)) and not m.button_values() and m,
        timeout=15,
    )
    assert "4 expired" in shown.all_text()
    assert await count(stack.runtime, "proposals", "status = 'expired'") == 4


# --- two replicas -----------------------------------------------------------------------------


@pytest.mark.integration
async def test_two_drains_on_one_postgresql_send_nothing_twice(
    pg_db: str, slack: FakeSlack
) -> None:
    """Two bot replicas (two engines, two drains) race over one outbox while alerts keep
    arriving: every proposal is posted exactly once, each channel in order."""
    first, drain_a = await build_outbox(
        pg_db, slack, CountingNotifier, group_window=timedelta(seconds=10)
    )
    second, drain_b = await build_outbox(
        pg_db, slack, CountingNotifier, group_window=timedelta(seconds=10)
    )
    outbox = Outbox(first, slack, drain_a)
    try:
        await install_policies(first, *(channel_policy(c) for c in CHANNELS))
        stop = asyncio.Event()

        async def keep_draining(drain: OutboxDrain) -> None:
            while not stop.is_set():
                # A clock that runs fast: back-offs after the injected 500s pass at once.
                outbox.clock += timedelta(seconds=10)
                await drain.drain_once(now=outbox.clock)
                await asyncio.sleep(0)

        async def alerts(channel: str) -> None:
            for i in range(40):
                await outbox.alert(channel, f"pod-{i}")
                if i % 7 == 0:
                    slack.fail_next(1, 500)  # now and then Slack stumbles too

        tasks = [asyncio.create_task(keep_draining(d)) for d in (drain_a, drain_b)]
        await asyncio.gather(*(alerts(c) for c in CHANNELS))

        async def left() -> int:
            return await unsent(first)

        await eventually(left, lambda n: n == 0, within=30, what="outbox drained")
        stop.set()
        await asyncio.gather(*tasks)
        assert await count(first, "proposals") == 120
        await assert_each_proposal_shown_once(outbox)
        for channel in CHANNELS:
            assert_channel_order(slack, channel)
        # Both replicas did some of the work, or the test proved nothing.
        counts = [d._notifier.posted for d in (drain_a, drain_b)]  # type: ignore[attr-defined]
        assert all(counts) and sum(counts) == sum(len(top_level(slack, c)) for c in CHANNELS)
    finally:
        await first.close()
        await second.close()


# --- pacing and the storm ----------------------------------------------------------------------


# Its own Redis database: other suites flush tests.stack's DB 15 while they run.
STORM_REDIS = REDIS_URL  # this session's own database (tests/redis_db.py)


@pytest.fixture
async def stack(pg_db: str) -> AsyncIterator[Stack]:
    await flush_redis(STORM_REDIS)
    async for s in make_stack(pg_db, policy(), redis=False, redis_url=STORM_REDIS):
        yield s


def channel_traffic(slack: FakeSlack, channel: str) -> list[Call]:
    """Every post and edit sent to the channel (failed tries included)."""
    return [
        c
        for c in slack.calls
        if c.method in ("chat.postMessage", "chat.update") and c.params.get("channel") == channel
    ]


def gaps(calls: Sequence[Call]) -> list[float]:
    times = sorted(c.time for c in calls)
    return [b - a for a, b in itertools.pairwise(times)]


async def test_posts_to_one_channel_are_paced(db_url: str, slack: FakeSlack) -> None:
    runtime, drain = await build_outbox(db_url, slack, pace_seconds=0.3)
    outbox = Outbox(runtime, slack, drain)
    try:
        await install_policies(runtime, *(channel_policy(c) for c in CHANNELS))
        for channel in CHANNELS:
            for i in range(2):
                await outbox.alert(channel, f"api-{i}")
        task = asyncio.create_task(drain.run(idle_seconds=0.05))
        try:
            await slack.wait_for(lambda: len(posts(slack)) == 6, timeout=10)
        finally:
            task.cancel()
        for channel in CHANNELS:
            [gap] = gaps(posts(slack, channel))
            assert gap >= 0.29, (channel, gap)
        # Channels do not wait for each other: every channel's first post went out before
        # any channel's second one.
        firsts = [posts(slack, c)[0].time for c in CHANNELS]
        seconds = [posts(slack, c)[1].time for c in CHANNELS]
        assert max(firsts) < min(seconds)
    finally:
        await runtime.close()


@pytest.mark.integration
@pytest.mark.slow
async def test_an_alert_storm_is_grouped_paced_and_approved_at_once(stack: Stack) -> None:
    """1,000 alerts for one policy within 5 s, through POST /alerts, with the real drain:
    a handful of grouped messages, never two posts to the channel within a second, every
    proposal recorded; approve-all on a group approves its pending proposals, enqueues
    their jobs and updates the group message."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for batch in range(100):
        pods = (crashloop(pod=f"api-{batch * 10 + j}") for j in range(10))
        assert (await stack.post_alerts(payload(*pods)))["proposals"] == 10
        # Spread over ~4.5 s (load shaping, not a wait for a result).
        await asyncio.sleep(max(0.0, started + (batch + 1) * 0.045 - loop.time()))
    assert await count(stack.runtime, "proposals", "status = 'pending'") == 1000
    assert await count(stack.runtime, "audit_events", "verb = 'proposal.created'") == 1000

    async def unposted() -> int:
        return await count(stack.runtime, "proposals", "slack_ts IS NULL")

    await eventually(unposted, lambda n: n == 0, within=30, what="every proposal posted")
    await eventually(
        lambda: unsent(stack.runtime), lambda n: n == 0, within=30, what="outbox empty"
    )
    slack = stack.slack
    top = top_level(slack, STACK_CHANNEL)
    assert 2 <= len(top) <= 10, [m.text for m in top]
    refs = await slack_refs(stack.runtime)
    assert {ts for _, ts in refs.values()} == {m.ts for m in top}
    spacing = gaps(channel_traffic(slack, STACK_CHANNEL))
    assert min(spacing) >= 0.95, spacing
    # The thread under each group lists every one of its proposals.
    members = Counter(ts for _, ts in refs.values())
    for message in top:
        if members[message.ts] >= 3:
            detail = [m for m in slack.messages(STACK_CHANNEL) if m.thread_ts == message.ts]
            assert len(detail) == math.ceil(members[message.ts] / 100)

    biggest = max(top, key=lambda m: members[m.ts])
    group_ids = sorted(pid for pid, (_, ts) in refs.items() if ts == biggest.ts)
    assert set(biggest.button_values()) == {"group_approve", "group_deny"}
    clicked = loop.time()
    response = await stack.click("group_approve", "group", message_ts=biggest.ts)
    assert response.status == 200
    assert loop.time() - clicked < 3.0  # Slack's 3 s rule: acked before the work

    async def approved() -> int:
        return await count(
            stack.runtime,
            "proposals",
            f"status = 'approved' AND slack_ts = '{biggest.ts}'",
        )

    await eventually(approved, lambda n: n == len(group_ids), within=60, what="approve-all done")
    assert await count(stack.runtime, "proposals", "status = 'approved'") == len(group_ids)
    queue = Queue("infraai", connection=Redis.from_url(STORM_REDIS))
    expected = {f"proposal-{pid}" for pid in group_ids}

    async def queued() -> set[str]:
        return set(queue.job_ids)

    await eventually(queued, lambda jobs: jobs == expected, within=30, what="jobs queued")
    updated = await slack.wait_for(
        lambda: (m := slack.message(STACK_CHANNEL, biggest.ts)) and not m.button_values() and m,
        timeout=30,
    )
    assert f"{len(group_ids)} approved" in updated.all_text()
    took = loop.time() - clicked
    assert min(gaps(channel_traffic(slack, STACK_CHANNEL))) >= 0.95  # edits paced too
    # Coalesced: at most one edit per drain pass (~1/s), not one per decision.
    assert len(slack.calls_to("chat.update")) <= took + 2
