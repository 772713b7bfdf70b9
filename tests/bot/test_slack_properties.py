"""Property tests: whatever a Slack request or a command line holds, InfraAI answers it.

Hypothesis generates signed events, slash commands, block_actions clicks and raw bodies —
JSON-ish values of any shape, and structure-aware mutations of valid payloads (a field
deleted, retyped, or set to a value that once broke something: `"1_0"`, 30 digits,
`<!channel>`) — and sends each through the real aiohttp app, Bolt and listeners, with the fake
Slack behind. For every input: no 5xx, no traceback or error in the logs once its background
work has finished, and no proposal decided unless the input was a valid, authorised decision
naming it. The command parser gets arbitrary text: a reply or a clear error, never an
exception, and nothing typed comes back as live Slack markup.

How many inputs each surface received is counted in the suite's tally, printed with the
run's summary ("property tests").
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render_text import render_reply as render_console
from bot.slack.render import render_reply as render_slack
from core.commands import COMMANDS, run_command
from tests.fakes.slack_signing import (
    app_mention_event,
    block_actions_payload,
    event_callback_payload,
    sign,
    slash_command_payload,
    url_verification_payload,
)
from tests.helpers import crashloop, payload, policy, rows

# The suite's shared tally: the run's summary prints every surface's counts.
from tests.properties.tally import GENERATED, SERVER_ERRORS
from tests.stack import APPROVER, CHANNEL, SECRET, STRANGER, Stack, make_stack

PROPERTY_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Values that broke something once, or are meant to look like something they are not.
TRICKY_STRINGS = [
    "",
    "1",
    "2",
    "0",
    "-1",
    "1_0",
    "0_1",
    " 1",
    "#1",
    "１",
    "1.0",
    "9" * 30,
    "9" * 5000,
    "<!channel>",
    "&lt;!channel&gt;",
    "<@U0EVIL>",
    "<https://evil.example|docs>",
    "\x00",
    "\ud800",
    "payload",
    "{",
    APPROVER,
    STRANGER,
    "S0ONCALL",
    "proposal_approve",
    "group_approve",
    "help",
    "policy show restart-crashlooping-pod",
]

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(TRICKY_STRINGS)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def _paths(node: Any, depth: int = 0) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) slot of a JSON value, to mutate one of them."""
    if depth > 6:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _paths(value, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _paths(value, depth + 1)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid payload with a few slots deleted, retyped, or set to tricky values."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 4))):
        slots = list(_paths(data))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        how = draw(st.sampled_from(["tricky", "any", "delete", "add"]))
        if how == "delete":
            del container[key]
        elif how == "tricky":
            container[key] = draw(st.sampled_from(TRICKY_STRINGS))
        elif how == "any":
            container[key] = draw(json_values)
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12))] = draw(json_values)
    return data


class Harness:
    """The whole bot on its own event loop, driven example by example from a synchronous
    Hypothesis test (so each test can count its inputs once they have all run)."""

    def __init__(self, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
        self.loop = asyncio.new_event_loop()
        self.caplog = caplog
        self._stacks = make_stack(
            database_url, policy(), redis=False, infraai_dry_run=True, infraai_approvers=(APPROVER,)
        )
        self.stack: Stack = self.run(anext(self._stacks))
        self.messages = self.run(two_pending_proposals(self.stack))
        self.allowed: set[int] = set()  # proposals an authorised click has named so far

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        with contextlib.suppress(StopAsyncIteration):  # make_stack's clean-up runs
            self.run(anext(self._stacks))
        self.loop.close()


@pytest.fixture
def harness(sqlite_db: str, caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    caplog.set_level(logging.INFO)
    h = Harness(sqlite_db, caplog)
    yield h
    h.close()


async def settle(stack: Stack) -> None:
    """Wait for the listeners' background work (the drain and the sweep run for ever)."""
    for _ in range(100):
        # Runtime keeps the tasks it spawned; the two named ones are the long-lived loops.
        work = [
            t for t in stack.runtime._tasks if t.get_name() not in ("outbox-drain", "maintenance")
        ]
        if not work:
            return
        await asyncio.gather(*work, return_exceptions=True)
    raise AssertionError("listener work kept spawning more work")


def problems_in(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:300]}"
        for r in records
        if r.exc_info is not None or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]


async def two_pending_proposals(stack: Stack) -> dict[int, str]:
    """Two proposals with their own messages; returns id → message ts."""
    await stack.post_alerts(payload(crashloop("api-1"), crashloop("api-2")))
    await stack.slack.wait_for(
        lambda: len([m for m in stack.slack.messages(CHANNEL) if m.button_values()]) == 2,
        timeout=10,
    )
    found = await rows(stack.runtime, "SELECT id, slack_ts FROM proposals ORDER BY id")
    return {row["id"]: row["slack_ts"] for row in found}


async def send(h: Harness, surface: str, body: bytes, headers: dict[str, str]) -> int:
    """One generated request: counted, answered below 500, its work done without errors."""
    GENERATED[surface] += 1
    seen = len(h.caplog.records)
    response = await h.stack.client.post("/slack/events", data=body, headers=headers)
    await response.read()
    if response.status >= 500:
        SERVER_ERRORS[surface] += 1
    assert response.status < 500, (surface, body[:300])
    await settle(h.stack)
    assert problems_in(h.caplog.records[seen:]) == [], body[:300]
    await assert_only_authorised_decisions(h.stack, h.allowed)
    return response.status


def form(fields: dict[str, Any]) -> bytes:
    """Form-encoded as Slack does; a lone surrogate becomes bytes that are not UTF-8."""
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    return urlencode(values, encoding="utf-8", errors="surrogatepass").encode()


def signed(body: bytes, content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, **sign(SECRET, body)}


FORM = "application/x-www-form-urlencoded"


def authorised_targets(data: Any, messages: dict[int, str]) -> set[int]:
    """The proposals a click may legitimately decide: an approver's Approve/Deny naming one
    in InfraAI's own format, or approve-all/deny-all on its message. (An allowance, so a
    superset is fine: what is checked is that nothing else ever changes.)"""
    if not isinstance(data, dict) or not isinstance(data.get("user"), dict):
        return set()
    if data["user"].get("id") != APPROVER:
        return set()
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return set()
    action_id, value = actions[0].get("action_id"), actions[0].get("value")
    if action_id in ("proposal_approve", "proposal_deny"):
        if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,17}", value):
            return {int(value)}
        return set()
    if action_id in ("group_approve", "group_deny"):
        container = data.get("container")
        ts = container.get("message_ts") if isinstance(container, dict) else None
        return {pid for pid, message_ts in messages.items() if message_ts == ts}
    return set()


async def assert_only_authorised_decisions(stack: Stack, allowed: set[int]) -> None:
    """Nothing half-written: a proposal left `pending` only by an allowed decision, by the
    approver, with exactly one decision audited for each."""
    found = await rows(stack.runtime, "SELECT id, status, decided_by FROM proposals")
    for row in found:
        if row["status"] != "pending":
            assert row["id"] in allowed, row
            assert row["decided_by"] == APPROVER, row
    decided = [r for r in found if r["status"] != "pending"]
    [audits] = await rows(
        stack.runtime,
        "SELECT count(*) AS n FROM audit_events "
        "WHERE verb IN ('proposal.approved', 'proposal.denied')",
    )
    assert audits["n"] == len(decided)


def at_least(surface: str, least: int) -> None:
    assert GENERATED[surface] >= least, GENERATED
    assert SERVER_ERRORS[surface] == 0, SERVER_ERRORS


# --- (a) Slack payloads ------------------------------------------------------------------


def test_signed_block_actions_of_any_shape(harness: Harness) -> None:
    h = harness

    @settings(PROPERTY_SETTINGS, max_examples=200)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        action = st.sampled_from(
            ["proposal_approve", "proposal_deny", "group_approve", "group_deny", "other"]
        )
        base = block_actions_payload(
            data.draw(action),
            data.draw(st.sampled_from(TRICKY_STRINGS) | st.text(max_size=20)),
            user_id=data.draw(st.sampled_from([APPROVER, STRANGER, "S0ONCALL", "U0BOB", ""])),
            channel_id=CHANNEL,
            message_ts=data.draw(st.sampled_from([*h.messages.values(), "1.0"])),
            response_url=h.stack.slack.new_response_url(CHANNEL),
        )
        shaped = data.draw(mutated(base) | json_values)
        if isinstance(shaped, dict) and data.draw(st.booleans()):
            shaped = {**shaped, "type": "block_actions"}
        h.allowed |= authorised_targets(shaped, h.messages)
        body = urlencode({"payload": json.dumps(shaped)}).encode()
        h.run(send(h, "slack block_actions", body, signed(body, FORM)))

    example()
    at_least("slack block_actions", 150)


def test_signed_slash_commands_of_any_shape(harness: Harness) -> None:
    h = harness

    @settings(PROPERTY_SETTINGS, max_examples=200)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        text = data.draw(
            st.sampled_from(TRICKY_STRINGS)
            | st.text(max_size=60)
            | st.builds(
                lambda name, rest: f"{name} {rest}",
                st.sampled_from(sorted(COMMANDS)),
                st.text(max_size=40) | st.sampled_from(TRICKY_STRINGS),
            )
        )
        base = slash_command_payload(
            text,
            user_id=data.draw(st.sampled_from([APPROVER, STRANGER, "S0ONCALL", ""])),
            channel_id=CHANNEL,
            response_url=h.stack.slack.new_response_url(CHANNEL),
        )
        body = form(data.draw(mutated(base)))
        h.run(send(h, "slack slash commands", body, signed(body, FORM)))

    example()
    at_least("slack slash commands", 150)


def test_signed_events_of_any_shape(harness: Harness) -> None:
    h = harness

    @settings(PROPERTY_SETTINGS, max_examples=200)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        text = data.draw(st.sampled_from(TRICKY_STRINGS) | st.text(max_size=60))
        mention = app_mention_event(f"<@U0FAKEBOT> {text}", channel_id=CHANNEL)
        base = data.draw(
            st.sampled_from(
                [event_callback_payload(mention), url_verification_payload(text or "challenge")]
            )
        )
        body = json.dumps(data.draw(mutated(base) | json_values)).encode()
        h.run(send(h, "slack events", body, signed(body, "application/json")))

    example()
    at_least("slack events", 150)


def test_raw_bodies_signed_or_forged(harness: Harness) -> None:
    h = harness

    @settings(PROPERTY_SETTINGS, max_examples=200)
    @given(
        body=st.binary(max_size=300)
        | st.text(max_size=200).map(str.encode)
        | json_values.map(lambda v: json.dumps(v).encode()),
        content_type=st.sampled_from(
            [
                "application/json",
                FORM,
                f"{FORM}; charset=utf-8",
                "application/json; charset=latin-1",
                "text/plain; charset=klingon",
                "",
            ]
        ),
        forged=st.none() | st.tuples(header_text, header_text),
    )
    def example(body: bytes, content_type: str, forged: tuple[str, str] | None) -> None:
        headers = signed(body, content_type) if content_type else dict(sign(SECRET, body))
        if forged is not None:
            headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"] = forged
        status = h.run(send(h, "slack raw bodies", body, headers))
        if forged is not None:
            assert status == 401

    example()
    at_least("slack raw bodies", 150)


# --- (b) the command parser ----------------------------------------------------------------

LIVE_BROADCASTS = ("<!channel>", "<!here>", "<!everyone>", "<@U0EVIL>", "<https://evil")


def test_the_command_parser_answers_any_text(harness: Harness) -> None:
    h = harness

    @settings(PROPERTY_SETTINGS, max_examples=400)
    @given(
        text=st.text(max_size=80)
        | st.sampled_from(TRICKY_STRINGS)
        | st.builds(
            lambda name, rest: f"{name} {rest}",
            st.sampled_from(sorted(COMMANDS)) | st.text(max_size=10),
            st.text(max_size=60) | st.sampled_from(TRICKY_STRINGS),
        ),
        user=st.sampled_from([APPROVER, STRANGER, "S0ONCALL", "", "<!channel>"]),
    )
    def example(text: str, user: str) -> None:
        GENERATED["command parser"] += 1
        reply = h.run(run_command(h.stack.runtime, user, text))
        console = render_console(reply)
        fallback, blocks = render_slack(reply)
        assert isinstance(console, str) and isinstance(fallback, str)
        shown = fallback + json.dumps(blocks, ensure_ascii=False)
        for token in LIVE_BROADCASTS:
            assert token not in shown, (text, shown[:500])

    example()
    at_least("command parser", 300)
