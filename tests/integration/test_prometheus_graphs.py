"""Prometheus against the real server (Debian's binary on loopback, scraping itself): the
adapter's queries and errors, `/infraai query` in Slack (the table in the channel, the PNG
uploaded to its thread through the three calls of files_upload_v2) and at the console, the
assistant's Prometheus tools, and the graph an alert's proposal gets in its thread."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.prometheus import PrometheusAdapter, PrometheusError
from bot.console import handle_line
from bot.slack.notifier import SlackNotifier
from core.agent.prometheus_tools import SAMPLES  # registers the tools
from core.agent.tools import TOOLS, ToolContext
from core.alert_graph import AlertGraph, AlertGraphs
from core.alerts.webhook import parse_payload
from core.commands import Error, QueryResult, run_command
from core.graph import HEIGHT_PX, WIDTH_PX, png_size
from core.notifier import OutboxDrain
from core.promql import MAX_SERIES
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import slash_command_body
from tests.helpers import alert, count, install_policies, payload, policy, rows
from tests.peers.prometheus_stack import Prometheus, alert_rule, free_port
from tests.stack import BOT_TOKEN, CHANNEL, Stack, make_stack

pytestmark = pytest.mark.integration

EVERY_SERIES = '{__name__=~".+"}'  # a self-scraping Prometheus has hundreds


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """One Prometheus scraping itself every second, with data (`up` answers)."""
    port = free_port()
    peer = Prometheus(
        scrape={"prometheus": f"127.0.0.1:{port}"},
        port=port,
        workdir=tmp_path_factory.mktemp("prometheus"),
    )
    peer.start()
    try:
        deadline = time.monotonic() + 60
        while not peer.query("up"):  # its first scrape comes after discovery (~5 s)
            if time.monotonic() > deadline:
                raise AssertionError("Prometheus never scraped itself\n" + peer.describe())
            time.sleep(0.2)
        yield peer
    finally:
        peer.stop()


def down_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def is_png_of_graph_size(content: bytes | None) -> bool:
    return content is not None and png_size(content) == (WIDTH_PX, HEIGHT_PX)


# ---- the adapter -------------------------------------------------------------------------------


async def test_instant_and_range_queries(prometheus: Prometheus) -> None:
    adapter = PrometheusAdapter(prometheus.url)
    instant = await adapter.query("up")
    assert instant.data["resultType"] == "vector"
    [sample] = instant.data["result"]
    assert sample["metric"]["job"] == "prometheus" and sample["value"][1] == "1"

    end = datetime.now(UTC)
    ranged = await adapter.query_range("up", end - timedelta(minutes=5), end, 1)
    assert ranged.data["resultType"] == "matrix"
    [series] = ranged.data["result"]
    assert len(series["values"]) >= 1 and {v for _, v in series["values"]} == {"1"}
    assert adapter.health() == (True, f"Prometheus at {prometheus.url} is ready")


async def test_bad_promql_is_prometheus_own_message(prometheus: Prometheus) -> None:
    with pytest.raises(PrometheusError) as raised:
        await PrometheusAdapter(prometheus.url).query("sum(rate(up[5m])")
    assert raised.value.reason == "bad_query" and not raised.value.transient
    assert "parse error" in str(raised.value) and "\n" not in str(raised.value)


async def test_prometheus_down_is_one_transient_line() -> None:
    adapter = PrometheusAdapter(down_url())
    with pytest.raises(PrometheusError) as raised:
        await adapter.query("up")
    assert raised.value.reason == "unreachable" and raised.value.transient
    ok, detail = adapter.health()
    assert not ok and "unreachable" in detail


# ---- /infraai query --------------------------------------------------------------------------


@pytest.fixture
async def stack(sqlite_db: str, prometheus: Prometheus) -> AsyncIterator[Stack]:
    async for made in make_stack(sqlite_db, redis=False, prometheus_url=prometheus.url):
        yield made


async def test_slash_query_posts_the_table_and_uploads_the_graph_in_its_thread(
    stack: Stack,
) -> None:
    slack = stack.slack
    response = await stack.command("query up 30m")
    assert response.status == 200
    upload = await slack.wait_for(lambda: slack.uploaded_files(CHANNEL), timeout=30)
    [graph] = upload
    root = slack.message(CHANNEL, str(graph.thread_ts))
    assert root is not None and root.thread_ts is None  # a channel message, graph under it
    assert "up" in root.text and "1" in root.text
    assert 'job="prometheus"' in str(root.blocks)
    # files_upload_v2's three steps, in order, and a real PNG of the graph's size.
    methods = [c.method for c in slack.calls if c.method.startswith("files.")]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert is_png_of_graph_size(graph.content)
    assert graph.mimetype == "image/png" and graph.title == "up · last 30m"
    assert slack.ephemerals() == []


async def test_a_query_cut_at_100_series_says_so_with_the_topk_hint(stack: Stack) -> None:
    reply = await run_command(stack.runtime, "U0ALICE", f"query {EVERY_SERIES}")
    assert isinstance(reply, QueryResult)
    assert reply.total > MAX_SERIES and len(reply.rows) == 10
    assert any("topk(10, …)" in note for note in reply.notes)
    await stack.command(f"query {EVERY_SERIES}")
    [graph] = await stack.slack.wait_for(lambda: stack.slack.uploaded_files(CHANNEL), timeout=30)
    root = stack.slack.message(CHANNEL, str(graph.thread_ts))
    assert root is not None and "topk(10, …)" in str(root.blocks)


async def test_where_the_bot_cannot_post_the_table_comes_back_ephemeral(stack: Stack) -> None:
    stack.slack.add_channel("C0NOTJOINED", "elsewhere", is_member=False)
    url = stack.slack.new_response_url()
    body = slash_command_body("query up", channel_id="C0NOTJOINED", response_url=url)
    assert (await stack.signed(body)).status == 200
    [answer] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=30)
    assert answer.body["response_type"] == "ephemeral"
    assert 'job="prometheus"' in str(answer.body["blocks"])
    assert "once InfraAI may post here" in str(answer.body["blocks"])
    assert stack.slack.uploaded_files() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("query sum(rate(up[5m])", "parse error"),
        ("query", "Query what?"),
        ("query up 90d", "between 1m and 31d"),
    ],
)
async def test_bad_queries_are_a_message_not_a_traceback(
    stack: Stack, text: str, expected: str
) -> None:
    url = stack.slack.new_response_url()
    body = slash_command_body(text, channel_id=CHANNEL, response_url=url)
    assert (await stack.signed(body)).status == 200
    [answer] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=30)
    shown = str(answer.body)
    assert expected in shown and "Traceback" not in shown
    assert stack.slack.uploaded_files() == []


async def test_prometheus_down_or_not_configured_is_one_line(sqlite_db: str) -> None:
    for settings, expected in (
        ({"prometheus_url": down_url()}, "is unreachable (ClientConnectorError)"),
        ({}, "Prometheus is not configured: PROMETHEUS_URL is unset"),
    ):
        runtime = Runtime.build(make_settings(sqlite_db, **settings))
        try:
            reply = await run_command(runtime, "console", "query up")
        finally:
            await runtime.close()
        assert isinstance(reply, Error) and expected in reply.text


async def test_the_console_saves_the_graph_and_prints_its_path(
    sqlite_db: str, prometheus: Prometheus
) -> None:
    runtime = Runtime.build(make_settings(sqlite_db, prometheus_url=prometheus.url))
    try:
        output = await handle_line(runtime, "query up 10m")
    finally:
        await runtime.close()
    lines = output.splitlines()
    assert lines[0] == "query: up"
    assert lines[1].split() == ["VALUE", "SERIES"]
    assert lines[2].startswith("1 ") and 'job="prometheus"' in lines[2]
    path = Path(lines[-1].removeprefix("graph (last 10m): "))
    assert is_png_of_graph_size(await asyncio.to_thread(path.read_bytes))
    await asyncio.to_thread(path.unlink)


# ---- the assistant's tools ---------------------------------------------------------------


async def test_the_assistant_tools_query_and_summarise(sqlite_db: str, prometheus: Prometheus):
    runtime = Runtime.build(make_settings(sqlite_db, prometheus_url=prometheus.url))
    context = ToolContext(user="U0ALICE", conversation="test")
    try:
        now = await TOOLS.call(runtime, "prometheus_query", {"query": "up"}, context)
        ranged = await TOOLS.call(
            runtime, "prometheus_query_range", {"query": "up", "range": "5m"}, context
        )
        many = await TOOLS.call(runtime, "prometheus_query", {"query": EVERY_SERIES}, context)
        bad = await TOOLS.call(runtime, "prometheus_query", {"query": "up +"}, context)
        wrong = await TOOLS.call(
            runtime, "prometheus_query_range", {"query": "up", "range": "5 minutes"}, context
        )
    finally:
        await runtime.close()
    assert now.status == "ok" and now.data[0]["value"] == 1.0
    [series] = ranged.data
    assert ranged.status == "ok" and series["last"] == 1.0 and series["max"] == 1.0
    assert 1 <= len(series["points"]) <= SAMPLES
    assert many.status == "ok" and len(many.data) == MAX_SERIES and "topk" in many.message
    assert bad.status == "error" and "parse error" in bad.message
    assert wrong.status == "error" and "bad arguments: range" in wrong.message


# ---- a graph on every alert ---------------------------------------------------------------

GRAPH_CHANNEL = "C0GRAPHS"


def generator_url(base: str, expr: str) -> str:
    return f"{base}/graph?g0.expr={urllib.parse.quote_plus(expr)}&g0.tab=1"


def graphed_alert(base: str, pod: str, expr: str = "up == 1") -> dict[str, Any]:
    item = alert(
        {
            "alertname": "KubePodCrashLooping",
            "namespace": "prod",
            "pod": pod,
            "severity": "critical",
        },
        starts_at=(datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    item["generatorURL"] = generator_url(base, expr)
    return item


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, channels={GRAPH_CHANNEL: "graphs"})
    await fake.start()
    yield fake
    await fake.stop()


async def outbox(db_url: str, slack: FakeSlack, **settings: Any) -> tuple[Runtime, OutboxDrain]:
    runtime = Runtime.build(make_settings(db_url, infraai_channel=GRAPH_CHANNEL, **settings))
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    drain = OutboxDrain(
        runtime.sessions,
        SlackNotifier(client),
        default_channel=GRAPH_CHANNEL,
        pace_seconds=0.0,
        group_window=timedelta(0),
        graphs=AlertGraphs(runtime.integrations),
    )
    await install_policies(runtime, policy())
    return runtime, drain


async def settle(runtime: Runtime, drain: OutboxDrain) -> None:
    for _ in range(20):
        if await count(runtime, "notifications", "sent_at IS NULL") == 0:
            return
        await drain.drain_once()
    raise AssertionError("the outbox did not empty")


async def graph_rows(runtime: Runtime) -> list[dict[str, Any]]:
    found = await rows(
        runtime, "SELECT proposal_id, payload FROM notifications WHERE kind = 'graph'"
    )
    return [dict(r) for r in found]


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    import json

    value = row["payload"]
    return json.loads(value) if isinstance(value, str) else value


async def test_an_alert_gets_its_graph_in_the_proposal_thread(
    db_url: str, slack: FakeSlack, prometheus: Prometheus
) -> None:
    runtime, drain = await outbox(db_url, slack, prometheus_url=prometheus.url)
    try:
        body = payload(graphed_alert(prometheus.url, "api-1"))
        assert (await runtime.alerts.ingest(parse_payload(body))).proposals == 1
        await settle(runtime, drain)
        [message] = [m for m in slack.messages(GRAPH_CHANNEL) if m.thread_ts is None]
        [graph] = slack.uploaded_files(GRAPH_CHANNEL)
        [row] = await graph_rows(runtime)
    finally:
        await runtime.close()
    assert graph.thread_ts == message.ts  # in the proposal's thread, after its message
    assert is_png_of_graph_size(graph.content)
    assert graph.title == "KubePodCrashLooping: up == 1"
    assert payload_of(row) == {"graph": "posted", "reason": "", "expr": "up == 1"}


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "Prometheus is not configured"),
        ({"prometheus_url": "unreachable"}, "is unreachable"),
    ],
    ids=["not-configured", "unreachable"],
)
async def test_the_graph_is_skipped_quietly_and_recorded(
    db_url: str, slack: FakeSlack, settings: dict[str, str], reason: str
) -> None:
    if settings.get("prometheus_url") == "unreachable":
        settings = {"prometheus_url": down_url()}
    runtime, drain = await outbox(db_url, slack, **settings)
    try:
        body = payload(graphed_alert("http://127.0.0.1:9090", "api-1"))
        await runtime.alerts.ingest(parse_payload(body))
        await settle(runtime, drain)
        [row] = await graph_rows(runtime)
        posted = [m for m in slack.messages(GRAPH_CHANNEL) if m.thread_ts is None]
    finally:
        await runtime.close()
    assert len(posted) == 1  # the proposal went out; its graph did not hold it up
    assert slack.uploaded_files() == []
    recorded = payload_of(row)
    assert recorded["graph"] == "skipped" and reason in recorded["reason"]


async def test_an_alert_without_an_expression_gets_no_graph_row(
    db_url: str, slack: FakeSlack, prometheus: Prometheus
) -> None:
    runtime, drain = await outbox(db_url, slack, prometheus_url=prometheus.url)
    try:
        item = graphed_alert(prometheus.url, "api-1")
        item["generatorURL"] = f"{prometheus.url}/graph"
        await runtime.alerts.ingest(parse_payload(payload(item)))
        await settle(runtime, drain)
        assert await graph_rows(runtime) == []
    finally:
        await runtime.close()
    assert slack.uploaded_files() == []


async def test_a_storm_gets_one_graph_per_distinct_expression(
    db_url: str, slack: FakeSlack, prometheus: Prometheus
) -> None:
    runtime, drain = await outbox(db_url, slack, prometheus_url=prometheus.url)
    try:
        storm = [graphed_alert(prometheus.url, f"api-{i}") for i in range(6)]
        storm += [graphed_alert(prometheus.url, f"web-{i}", "up > 0") for i in range(3)]
        assert (await runtime.alerts.ingest(parse_payload(payload(*storm)))).proposals == 9
        await settle(runtime, drain)
        [group] = [m for m in slack.messages(GRAPH_CHANNEL) if m.thread_ts is None]
        graphs = slack.uploaded_files(GRAPH_CHANNEL)
        recorded = [payload_of(r) for r in await graph_rows(runtime)]
    finally:
        await runtime.close()
    assert sorted(g.title for g in graphs) == [
        "KubePodCrashLooping: up == 1",
        "KubePodCrashLooping: up > 0",
    ]
    assert all(g.thread_ts == group.ts for g in graphs)
    assert sorted(r["graph"] for r in recorded) == ["posted"] * 2 + ["skipped"] * 7
    assert {r["reason"] for r in recorded if r["graph"] == "skipped"} == {
        "already graphed in this thread"
    }


@pytest.mark.slow
async def test_a_real_rule_through_a_real_alertmanager_gets_its_graph(
    sqlite_db: str, alertmanager_factory: Any, prometheus_factory: Any
) -> None:
    """Prometheus fires `up{job="checkout"} == 0`, Alertmanager delivers it to /alerts, the
    proposal is posted, and its thread gets the graph of that expression."""
    port = free_port()
    restart = policy(
        name="restart-on-target-down",
        matchers=['alertname="TargetDown"'],
        action="k8s.rollout_restart",
        params={"namespace": "{{ labels.namespace }}", "deployment": "{{ labels.job }}"},
    )
    async for stack in make_stack(
        sqlite_db, restart, redis=False, prometheus_url=f"http://127.0.0.1:{port}"
    ):
        alertmanager = alertmanager_factory(str(stack.client.make_url("/alerts")))
        prometheus = prometheus_factory(
            rules=alert_rule(
                "TargetDown",
                'up{job="checkout"} == 0',
                labels={"namespace": "shop", "severity": "critical"},
                annotations={"summary": "checkout is down"},
            ),
            alertmanager=alertmanager,
            scrape={"checkout": f"127.0.0.1:{free_port()}"},
            port=port,
        )
        slack = stack.slack
        try:
            [graph] = await slack.wait_for(
                lambda slack=slack: slack.uploaded_files(CHANNEL), timeout=60
            )
        except TimeoutError:
            raise AssertionError(prometheus.describe() + alertmanager.describe()) from None
        message = slack.message(CHANNEL, str(graph.thread_ts))
        assert message is not None and message.thread_ts is None
        assert "TargetDown" in message.text  # the proposal's own message
        assert graph.title == 'TargetDown: up{job="checkout"} == 0'
        assert is_png_of_graph_size(graph.content)


async def test_a_failed_upload_delays_the_graph_and_never_the_proposal(
    sqlite_db: str, slack: FakeSlack, prometheus: Prometheus
) -> None:
    runtime, drain = await outbox(sqlite_db, slack, prometheus_url=prometheus.url)
    try:
        slack.fail_next(1, 500, methods=["upload"])
        await runtime.alerts.ingest(parse_payload(payload(graphed_alert(prometheus.url, "a"))))
        await drain.drain_once()
        [message] = [m for m in slack.messages(GRAPH_CHANNEL) if m.thread_ts is None]
        assert slack.uploaded_files() == []
        [waiting] = await rows(
            runtime, "SELECT attempts, sent_at FROM notifications WHERE kind = 'graph'"
        )
        assert waiting["attempts"] == 1 and waiting["sent_at"] is None
        await drain.drain_once(now=datetime.now(UTC) + timedelta(seconds=10))
        [graph] = slack.uploaded_files(GRAPH_CHANNEL)
    finally:
        await runtime.close()
    assert graph.thread_ts == message.ts and is_png_of_graph_size(graph.content)


async def test_an_upload_that_keeps_failing_is_given_up_and_the_channel_moves_on(
    sqlite_db: str, slack: FakeSlack, prometheus: Prometheus
) -> None:
    """Uploads refused for good (a proxy that blocks files.slack.com) must not hold the
    channel's later proposals behind the graph for ever."""
    runtime, drain = await outbox(sqlite_db, slack, prometheus_url=prometheus.url)
    try:
        slack.fail_next(1000, 500, methods=["upload"])
        await runtime.alerts.ingest(parse_payload(payload(graphed_alert(prometheus.url, "a"))))
        later = datetime.now(UTC)
        for _ in range(6):
            later += timedelta(minutes=10)
            await drain.drain_once(now=later)
        await runtime.alerts.ingest(parse_payload(payload(graphed_alert(prometheus.url, "b"))))
        for _ in range(6):
            later += timedelta(minutes=10)
            await drain.drain_once(now=later)
        roots = [m for m in slack.messages(GRAPH_CHANNEL) if m.thread_ts is None]
        graphs = await rows(
            runtime, "SELECT payload, sent_at FROM notifications WHERE kind = 'graph'"
        )
    finally:
        await runtime.close()
    assert len(roots) == 2  # the second proposal went out
    assert slack.uploaded_files() == []
    for graph in graphs:
        payload_ = graph["payload"]
        payload_ = json.loads(payload_) if isinstance(payload_, str) else payload_
        assert graph["sent_at"] is not None
        assert payload_["graph"] == "skipped" and "upload" in payload_["reason"]


async def test_after_a_failure_prometheus_rests_so_a_storm_does_not_wait_per_alert(
    sqlite_db: str, prometheus: Prometheus
) -> None:
    from core.alert_graph import Skipped

    down = Runtime.build(make_settings(sqlite_db, prometheus_url=down_url()))
    up = Runtime.build(make_settings(sqlite_db, prometheus_url=prometheus.url))
    try:
        graphs = AlertGraphs(down.integrations)
        first = await graphs.draw("up", "A", None)
        second = await graphs.draw("up", "A", None)
        bad = await AlertGraphs(up.integrations).draw("up +", "A", None)
        good = await AlertGraphs(up.integrations, resting=0).draw("up", "A", None)
    finally:
        await down.close()
        await up.close()
    assert isinstance(first, Skipped) and "unreachable" in first.reason
    assert isinstance(second, Skipped)
    assert second.reason.startswith("Prometheus failed a moment ago (") and "unreachable" in (
        second.reason
    )
    assert isinstance(bad, Skipped) and "parse error" in bad.reason  # the expression's fault
    assert isinstance(good, AlertGraph) and is_png_of_graph_size(good.content)
