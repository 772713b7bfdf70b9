"""The README's console transcript is what the code prints: the example alert through the
example policies (as `make run` applies them), the card, `approve 1`, and the result."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bot.console import ConsoleNotifier, handle_line
from core.alerts.webhook import parse_payload
from core.approvals import TrustedAuthorizer
from core.policy.store import apply_policies, load_document
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import EXAMPLES, eventually, example_alert_payload

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z?")


def block_after(marker: str) -> list[str]:
    """The lines of the first fenced block after `marker` in the README."""
    rest = README.split(marker, 1)[1]
    body = rest.split("```", 2)[1]
    return body.split("\n", 1)[1].rstrip("\n").splitlines()


def as_pattern(line: str) -> re.Pattern[str]:
    """A README line as a pattern: times, durations and an elided "…" stand for any value."""
    pattern = re.escape(TIME.sub("<TIME>", line))
    pattern = pattern.replace("<TIME>", TIME.pattern).replace("…", ".*")
    pattern = re.sub(r"\\ \d+\\.\d\\ s", r" \\d+\\.\\d s", pattern)
    return re.compile(pattern)


@pytest.fixture
async def console(sqlite_db: str):
    runtime = Runtime.build(
        make_settings(sqlite_db, infraai_dry_run=True), authorizer=TrustedAuthorizer()
    )
    out = io.StringIO()
    runtime.attach_notifier(ConsoleNotifier(out))
    specs = load_document((EXAMPLES / "policies.yaml").read_text())
    async with runtime.sessions() as session, session.begin():
        await apply_policies(session, specs, "readme")
    runtime.policies.invalidate()
    runtime.start_background(maintenance_seconds=0.2)
    yield runtime, out
    await runtime.close()


async def test_the_readme_transcript_is_what_the_console_prints(console) -> None:
    runtime, out = console
    outcome = await runtime.alerts.ingest(parse_payload(example_alert_payload()))
    for listener in runtime.on_ingested:
        listener(outcome)

    async def printed() -> str:
        return out.getvalue()

    card = block_after("The proposal appears in the `make run` terminal:")
    shown = await eventually(
        printed, lambda text: "type approve 1" in text, within=10, what="the card"
    )
    shown_card = [line for line in shown.splitlines() if line.strip()][-len(card) :]
    for expected, got in zip(card, shown_card, strict=True):
        assert as_pattern(expected).fullmatch(got), (expected, got)

    transcript = block_after("Type `approve 1` there")
    assert transcript[0] == "approve 1"
    answer = await handle_line(runtime, "approve 1")
    assert as_pattern(transcript[1]).fullmatch(answer), (transcript[1], answer)
    # The state lines and the result in the thread, as the console prints them: every
    # change once, in order.
    expected = transcript[2:]
    result = await eventually(
        printed,
        lambda text: "✅ #1 succeeded" in text and "↳ #1 " in text,
        within=20,
        what="the result",
    )
    lines = result.splitlines()
    matched = [
        next(i for i, got in enumerate(lines) if as_pattern(line).fullmatch(got))
        for line in expected
    ]
    assert matched == sorted(matched), (expected, lines[-6:])
    for line in expected:
        assert sum(bool(as_pattern(line).fullmatch(got)) for got in lines) == 1, (line, lines[-6:])


async def test_the_readme_proposals_listing_is_what_the_cli_prints(
    console, monkeypatch, capsys
) -> None:
    import asyncio

    from bot.cli import main

    runtime, _out = console
    await runtime.alerts.ingest(parse_payload(example_alert_payload()))
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["proposals"]) == 0
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    readme = [
        line.removeprefix("# ")
        for line in block_after("crash-loops — from another:")
        if line.startswith("# ID") or line.startswith("# 1 ")
    ]
    assert readme[0] == printed[0]
    assert as_pattern(readme[1]).fullmatch(printed[1]), (readme[1], printed[1])
