"""One proposal followed through the console, as a newcomer sees it in `make run`: every
change of state printed once, in order, and no Slack markup anywhere.

The embedded default: SQLite, dry run, no cluster, actions in-process. Issue 10: the final
status line came out twice (the outbox re-renders a message from the proposal's state when
it sends, and two updates sent after the job ended both said "succeeded") and backticks
showed as typed.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.console import ConsoleNotifier, handle_line
from core.alerts.webhook import parse_payload
from core.approvals import TrustedAuthorizer, expire
from core.db.types import utcnow
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import crashloop, eventually, install_policies, payload, policy

# What Slack would read as markup: code spans, bold, mentions, links and specials.
MARKUP = re.compile(r"`|\*[^*\s][^*]*\*|<[@#!][^>]*>|<https?://[^>]*>")
STATE_LINE = re.compile(
    r"^\S+ #1 (pending|approved|running|succeeded|failed|denied|expired|superseded)\b"
)


class Console:
    def __init__(self, runtime: Runtime, out: io.StringIO) -> None:
        self.runtime = runtime
        self.out = out
        self.typed: list[str] = []  # what handle_line answered, as the prompt prints it

    async def ingest(self, body: dict[str, Any]) -> None:
        outcome = await self.runtime.alerts.ingest(parse_payload(body))
        for listener in self.runtime.on_ingested:
            listener(outcome)

    async def line(self, line: str) -> str:
        answer = await handle_line(self.runtime, line)
        self.typed.append(answer)
        return answer

    async def printed(self, text: str) -> str:
        async def probe() -> str:
            return self.out.getvalue()

        return await eventually(probe, lambda out: text in out, within=20, what=repr(text))

    def everything(self) -> str:
        return self.out.getvalue() + "\n" + "\n".join(self.typed)

    def states(self) -> list[str]:
        return [STATE_LINE.match(line).group(1) for line in self.state_lines()]  # type: ignore[union-attr]

    def state_lines(self) -> list[str]:
        """The one-line state changes of proposal #1 (the card's head is "#1 PENDING")."""
        return [line for line in self.out.getvalue().splitlines() if STATE_LINE.match(line)]


@pytest.fixture
async def console(sqlite_db: str) -> AsyncIterator[Console]:
    settings = make_settings(sqlite_db, infraai_dry_run=True)
    runtime = Runtime.build(settings, authorizer=TrustedAuthorizer())
    out = io.StringIO()
    runtime.attach_notifier(ConsoleNotifier(out))
    await install_policies(runtime, policy())
    runtime.start_background(maintenance_seconds=0.2)
    yield Console(runtime, out)
    await runtime.close()


async def _quiet(console: Console) -> None:
    """Until the outbox has nothing left to send: later lines would come now or never."""
    from tests.helpers import count

    await eventually(
        lambda: count(console.runtime, "notifications", "sent_at IS NULL"),
        lambda unsent: unsent == 0,
        within=20,
        what="the outbox drained",
    )


async def test_approve_to_result_prints_each_state_once_without_markup(console) -> None:
    await console.ingest(payload(crashloop()))
    await console.printed("#1 PENDING")
    assert (await console.line("approve 1")).startswith("Approved proposal #1")
    await console.printed("✅ #1 succeeded")
    await _quiet(console)

    assert console.states() == ["approved", "running", "succeeded"], console.out.getvalue()
    assert "👍 #1 approved by console" in console.state_lines()
    results = [line for line in console.out.getvalue().splitlines() if "↳ #1 " in line]
    assert len(results) == 1 and "Dry run" in results[0], console.out.getvalue()
    assert not MARKUP.search(console.everything()), MARKUP.findall(console.everything())


async def test_a_denied_proposal_prints_denied_once(console) -> None:
    await console.ingest(payload(crashloop()))
    await console.printed("#1 PENDING")
    await console.line("deny 1")
    await console.line("approve 1")  # too late: an answer at the prompt, not a state line
    await console.printed("🚫 #1 denied by console")
    await _quiet(console)
    assert console.states() == ["denied"]
    assert not MARKUP.search(console.everything()), MARKUP.findall(console.everything())


async def test_expiry_prints_expired_once(console) -> None:
    await console.ingest(payload(crashloop()))
    await console.printed("#1 PENDING")
    async with console.runtime.sessions() as session, session.begin():
        assert await expire(session, [1], utcnow()) == [1]
    console.runtime.drain.wake()  # type: ignore[union-attr]
    await console.printed("⌛ #1 expired")
    await _quiet(console)
    assert console.states() == ["expired"]
    assert not MARKUP.search(console.everything()), MARKUP.findall(console.everything())


async def test_a_resolved_alert_prints_superseded_once(console) -> None:
    await console.ingest(payload(crashloop()))
    await console.printed("#1 PENDING")
    await console.ingest(payload(crashloop(status="resolved")))
    await console.printed("🔕 #1 superseded")
    await _quiet(console)
    assert console.states() == ["superseded"]
    assert not MARKUP.search(console.everything()), MARKUP.findall(console.everything())


async def test_commands_answer_without_markup(console) -> None:
    for line in (
        "help",
        "policy list",
        "policy show restart-crashlooping-pod",
        "jobs x",
        "policy show nope",
        "frobnicate",
        "scan 127.0.0.1",
        "status",
    ):
        await console.line(line)
    assert not MARKUP.search(console.everything()), MARKUP.findall(console.everything())
