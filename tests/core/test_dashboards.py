"""`dashboards [search] [panel P]` against the fake Grafana, through the command parser and
the console: links, one dashboard's panels, a panel's picture (saved, path printed) or its
link when Grafana has no renderer, and Grafana's refusals as one line — never the token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.console import handle_line
from core.approvals import TrustedAuthorizer
from core.commands import Dashboards, Error, run_command
from core.dashboards import split_panel
from core.runtime import Runtime
from tests.adapters.test_grafana import seeded
from tests.conftest import make_settings
from tests.fakes.grafana import TOKEN, FakeGrafana


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = seeded()
    with fake.run_in_thread():
        yield fake


async def _runtime(sqlite_db: str, **settings: object) -> Runtime:
    return Runtime.build(make_settings(sqlite_db, **settings), authorizer=TrustedAuthorizer())


@pytest.fixture
async def runtime(sqlite_db: str, grafana: FakeGrafana) -> AsyncIterator[Runtime]:
    built = await _runtime(sqlite_db, grafana_url=grafana.url, grafana_token=TOKEN)
    yield built
    await built.close()


@pytest.fixture
def pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import bot.console

    monkeypatch.setattr(bot.console, "PICTURES", tmp_path / "pictures")
    return tmp_path / "pictures"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ("", None)),
        (["node", "exporter"], ("node exporter", None)),
        (["node", "panel", "2"], ("node", "2")),
        (["node", "Panel", "CPU", "busy"], ("node", "CPU busy")),
        (["panel", "stats", "panel", "3"], ("panel stats", "3")),  # the last `panel` splits
        (["node", "panel"], ("node", "")),
    ],
)
def test_split_panel(args, expected) -> None:
    assert split_panel(args) == expected


async def test_the_list_has_links(runtime, grafana) -> None:
    reply = await run_command(runtime, "U1", "dashboards")
    assert isinstance(reply, Dashboards)
    assert [d.title for d in reply.found.dashboards] == [
        "API RED",
        "Kubernetes / Pods",
        "Node Exporter Full",
    ]
    text = await handle_line(runtime, "dashboards")
    assert "Node Exporter Full (Infrastructure)" in text
    assert f"{grafana.url}/d/node-full/node-exporter-full" in text


async def test_one_match_lists_its_panels(runtime, grafana) -> None:
    text = await handle_line(runtime, "dashboards node")
    assert text.splitlines()[0] == "Node Exporter Full (Infrastructure)"
    assert "   2  CPU busy" in text.splitlines()
    assert f"{grafana.url}/d/node-full/node-exporter-full?viewPanel=20" in text  # collapsed row
    assert "dashboards node panel ID" in text


async def test_an_exact_title_among_several_lists_its_panels(runtime, grafana) -> None:
    grafana.add_dashboard("api-red-old", "API RED (old)", [(9, "Old")])
    listed = await run_command(runtime, "U1", "dashboards api red")
    assert isinstance(listed, Dashboards) and listed.found.board is not None
    assert listed.found.board.uid == "api-red"


async def test_a_panel_picture_is_saved_and_its_path_printed(runtime, grafana, pictures) -> None:
    text = await handle_line(runtime, "dashboards node panel 2")
    assert text.startswith("📊 Panel 2 CPU busy of Node Exporter Full")
    saved = Path(text.rsplit("Picture saved to ", 1)[1].strip())
    assert saved.parent == pictures and saved.name.startswith("grafana-node-full-panel-2-")
    assert (await asyncio.to_thread(saved.read_bytes)).startswith(b"\x89PNG\r\n\x1a\n")
    by_title = await run_command(runtime, "U1", "dashboards node panel memory")
    assert isinstance(by_title, Dashboards) and by_title.found.panel is not None
    assert by_title.found.panel.id == 3


async def test_without_a_renderer_the_panel_link_and_why(sqlite_db, pictures) -> None:
    fake = seeded(renderer=False)
    with fake.run_in_thread():
        runtime = await _runtime(sqlite_db, grafana_url=fake.url, grafana_token=TOKEN)
        try:
            text = await handle_line(runtime, "dashboards node panel 2")
        finally:
            await runtime.close()
    assert f"{fake.url}/d/node-full/node-exporter-full?viewPanel=2" in text
    assert "No picture: Grafana could not render" in text and "renderer is not installed" in text
    assert "saved" not in text and not pictures.exists()


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("dashboards nothing-like-this", "No Grafana dashboard matches 'nothing-like-this'."),
        (
            "dashboards node panel 99",
            "No panel '99': the panels are listed by dashboards <search>.",
        ),
        (
            "dashboards panel 2",
            "Which dashboard, which panel?\nusage: dashboards <search> panel <id|title>",
        ),
        (
            "dashboards node panel",
            "Which dashboard, which panel?\nusage: dashboards <search> panel <id|title>",
        ),
        (
            "dashboards e panel 1",
            "3 dashboards match 'e': name one for its panel "
            "(API RED, Kubernetes / Pods, Node Exporter Full).",
        ),
    ],
)
async def test_what_is_not_there_is_said(runtime, line, answer) -> None:
    assert await handle_line(runtime, line) == answer


async def test_grafanas_refusals_are_one_line_without_the_token(sqlite_db, grafana, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "glsa_notTheRightOne_987654321"
    runtime = await _runtime(sqlite_db, grafana_url=grafana.url, grafana_token=wrong)
    try:
        refused = await handle_line(runtime, "dashboards")
        assert refused == "Grafana refused the token (401): check GRAFANA_TOKEN"
    finally:
        await runtime.close()
    runtime = await _runtime(sqlite_db, grafana_url=grafana.url, grafana_token=TOKEN)
    try:
        grafana.fail_next(502)
        failed = await handle_line(runtime, "dashboards")
        assert failed == "Grafana answered 502 for dashboard search: try again later"
    finally:
        await runtime.close()
    for line in [*caplog.messages, refused, failed]:
        assert wrong not in line and TOKEN not in line


async def test_a_dashboard_deleted_between_search_and_read_is_a_404_line(runtime, grafana) -> None:
    original = grafana._dashboard

    def vanished(uid: str):  # the search saw it; the read finds it gone
        grafana.dashboards.pop(uid, None)
        return original(uid)

    grafana._dashboard = vanished  # type: ignore[method-assign]
    assert await handle_line(runtime, "dashboards node") == (
        "Grafana has no dashboard with uid node-full (404)"
    )


async def test_a_forbidden_dashboard_is_a_403_line(runtime, grafana) -> None:
    original = grafana._search

    def search_sees_all(request):  # a folder permission: listed, but not readable
        grafana.forbidden.discard("api-red")
        response = original(request)
        grafana.forbidden.add("api-red")
        return response

    grafana._search = search_sees_all  # type: ignore[method-assign]
    grafana.forbid("api-red")
    answer = await handle_line(runtime, "dashboards API RED")
    assert answer.startswith("Grafana's token may not read dashboard with uid api-red (403)")


async def test_unset_grafana_url_says_so(sqlite_db) -> None:
    runtime = await _runtime(sqlite_db, grafana_url=None)
    try:
        reply = await run_command(runtime, "U1", "dashboards")
    finally:
        await runtime.close()
    assert isinstance(reply, Error)
    assert reply.text == "Grafana is not configured: GRAFANA_URL is unset"


async def test_help_lists_dashboards_as_available(runtime) -> None:
    help_text = await handle_line(runtime, "help")
    line = next(x for x in help_text.splitlines() if x.startswith("dashboards"))
    assert "not available" not in line and "panel" in line


async def test_a_third_picture_at_once_is_refused_with_the_link(runtime, grafana) -> None:
    """Renders hold adapter threads for up to a minute; more than two at once would take
    them from approved actions."""
    from core import dashboards

    assert dashboards.RENDERS_AT_ONCE == 2
    held = [dashboards._renders.acquire(blocking=False) for _ in range(2)]
    try:
        assert held == [True, True]
        reply = await run_command(runtime, "U1", "dashboards node panel 2")
    finally:
        for _ in held:
            dashboards._renders.release()
    assert isinstance(reply, Error) and "being drawn" in reply.text and "viewPanel=2" in reply.text
    again = await run_command(runtime, "U1", "dashboards node panel 2")
    assert isinstance(again, Dashboards) and again.found.image is not None
