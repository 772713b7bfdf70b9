"""`/infraai status` reports every integration the ports table knows — ok, not configured,
or failing with the reason — Grafana included, on the console and in Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.console import handle_line
from bot.slack.render import render_reply as slack_reply
from core.approvals import TrustedAuthorizer
from core.commands import Status, run_command
from core.ports import ADAPTERS
from core.runtime import Runtime
from tests.adapters.test_grafana import seeded
from tests.conftest import make_settings
from tests.fakes.grafana import TOKEN, FakeGrafana
from tests.peers.prometheus_stack import free_port


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = seeded()
    with fake.run_in_thread():
        yield fake


async def status_of(db: str, **settings: object) -> tuple[Status, str]:
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens: Ollama is failing, quickly
    runtime = Runtime.build(
        make_settings(db, ollama_base_url=away, **settings), authorizer=TrustedAuthorizer()
    )
    try:
        reply = await run_command(runtime, "U1", "status")
        assert isinstance(reply, Status)
        return reply, await handle_line(runtime, "status")
    finally:
        await runtime.close()


async def test_every_integration_has_a_line(sqlite_db) -> None:
    reply, text = await status_of(sqlite_db)
    names = [h.name for h in reply.items]
    assert set(ADAPTERS) <= set(names), names
    for name in ADAPTERS:
        [line] = [x for x in text.splitlines() if x.split(" ", 1)[1].startswith(f"{name}:")]
        assert any(state in line for state in ("ok", "not configured", "failing")), line
    _fallback, blocks = slack_reply(reply)
    for name in ADAPTERS:
        assert name in str(blocks)


async def test_grafana_unset_is_not_configured_with_the_reason(sqlite_db) -> None:
    _reply, text = await status_of(sqlite_db, grafana_url=None)
    assert "⚪ grafana: not configured — Grafana is not configured: GRAFANA_URL is unset" in text


async def test_grafana_answering_is_ok(sqlite_db, grafana) -> None:
    _reply, text = await status_of(sqlite_db, grafana_url=grafana.url, grafana_token=TOKEN)
    assert f"✅ grafana: ok — Grafana 10.4.2 at {grafana.url}" in text


@pytest.mark.parametrize(
    ("token", "down", "reason"),
    [
        ("glsa_revoked_0000000", False, "Grafana refused the token (401): check GRAFANA_TOKEN"),
        (TOKEN, True, "Grafana answered 503 for health endpoint: try again later"),
    ],
)
async def test_grafana_failing_says_why(sqlite_db, grafana, token, down, reason) -> None:
    grafana.database_ok = not down
    _reply, text = await status_of(sqlite_db, grafana_url=grafana.url, grafana_token=token)
    assert f"❌ grafana: failing — {reason}" in text
    assert "glsa_revoked" not in text


async def test_grafana_unreachable_is_failing(sqlite_db) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _reply, text = await status_of(sqlite_db, grafana_url=url, grafana_token=TOKEN)
    assert f"❌ grafana: failing — Grafana at {url} is unreachable (ConnectError)" in text
    assert TOKEN not in text
