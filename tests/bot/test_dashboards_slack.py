"""`/infraai dashboards` in Slack, through the real Bolt app and HTTP app against the fake
Slack and the fake Grafana: links as the command's answer, a panel's picture uploaded with
files_upload_v2 into the thread of a root message naming who asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.adapters.test_grafana import seeded
from tests.fakes.grafana import TOKEN, FakeGrafana
from tests.helpers import eventually
from tests.stack import APPROVER, CHANNEL, Stack, make_stack


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = seeded()
    with fake.run_in_thread():
        yield fake


@pytest.fixture
async def stack(sqlite_db: str, grafana: FakeGrafana) -> AsyncIterator[Stack]:
    async for built in make_stack(
        sqlite_db, redis=False, grafana_url=grafana.url, grafana_token=TOKEN
    ):
        yield built


async def _answer(stack: Stack) -> dict:
    found = await eventually(
        lambda: asyncio.sleep(0, stack.slack.responses()),
        bool,
        within=20,
        what="the command's answer",
    )
    return found[-1].body


async def test_the_list_answers_with_links(stack, grafana) -> None:
    assert (await stack.command("dashboards")).status == 200
    body = await _answer(stack)
    assert body["response_type"] == "ephemeral"
    text = str(body["blocks"])
    assert f"<{grafana.url}/d/node-full/node-exporter-full|Node Exporter Full>" in text
    assert "Kubernetes / Pods" in text


async def test_one_dashboard_answers_with_its_panels(stack, grafana) -> None:
    await stack.command("dashboards node exporter")
    text = str((await _answer(stack))["blocks"])
    assert f"<{grafana.url}/d/node-full/node-exporter-full?viewPanel=3|Memory used>" in text
    assert "panel &lt;id&gt;" in text


async def test_a_panel_picture_goes_into_a_thread(stack, grafana) -> None:
    await stack.command("dashboards node panel 2")
    [upload] = await eventually(
        lambda: asyncio.sleep(0, stack.slack.uploaded_files(CHANNEL)),
        bool,
        within=20,
        what="the picture uploaded",
    )
    assert upload.content is not None and upload.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert upload.mimetype == "image/png"
    assert upload.filename == "grafana-node-full-panel-2.png"
    assert upload.title == "Node Exporter Full · CPU busy"
    root = stack.slack.message(CHANNEL, upload.thread_ts)
    assert root is not None and root.thread_ts in (None, root.ts)
    assert root.text.startswith(f"<@{APPROVER}> asked for 📊 Panel <{grafana.url}/d/node-full")
    body = await _answer(stack)
    assert body["text"] == "📊 Posted in the channel." and body["response_type"] == "ephemeral"


async def test_without_a_renderer_the_link_is_the_answer(sqlite_db) -> None:
    fake = seeded(renderer=False)
    with fake.run_in_thread():
        async for stack in make_stack(
            sqlite_db, redis=False, grafana_url=fake.url, grafana_token=TOKEN
        ):
            await stack.command("dashboards node panel CPU")
            body = await _answer(stack)
            assert stack.slack.uploaded_files() == []
    text = body["text"]
    assert f"{fake.url}/d/node-full/node-exporter-full?viewPanel=2" in text
    assert "No picture: Grafana could not render" in text


async def test_when_slack_refuses_the_post_the_link_is_the_answer(stack, grafana) -> None:
    stack.slack.fail_next(1, 500, methods=["chat.postMessage"])
    await stack.command("dashboards node panel 2")
    body = await _answer(stack)
    assert "viewPanel=2" in body["text"] and stack.slack.uploaded_files() == []


async def test_when_the_upload_fails_the_link_is_the_answer(stack, grafana) -> None:
    stack.slack.fail_next(3, 500, methods=["upload"])
    await stack.command("dashboards node panel 2")
    body = await _answer(stack)
    assert "viewPanel=2" in body["text"] and stack.slack.uploaded_files() == []


async def test_a_refused_token_is_one_ephemeral_line(sqlite_db, grafana) -> None:
    async for stack in make_stack(
        sqlite_db, redis=False, grafana_url=grafana.url, grafana_token="glsa_wrong_12345678"
    ):
        await stack.command("dashboards")
        body = await _answer(stack)
    assert "Grafana refused the token (401): check GRAFANA_TOKEN" in body["text"]
    assert "glsa_wrong" not in str(body)
