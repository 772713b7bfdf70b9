"""A real rule fires in Prometheus, real Alertmanager delivers to /alerts, a proposal is
recorded on real PostgreSQL; the alert resolves and the proposal is superseded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.http.app import create_app
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import eventually, install_policies, policy, rows
from tests.peers.prometheus_stack import alert_rule, free_port

pytestmark = pytest.mark.integration
TOKEN = "am-token"


@pytest.fixture
async def infraai(pg_db: str) -> AsyncIterator[tuple[Runtime, str]]:
    runtime = Runtime.build(make_settings(pg_db, alerts_token=TOKEN))
    await install_policies(runtime, policy())
    server = TestServer(create_app(runtime), host="127.0.0.1", port=free_port())
    await server.start_server()
    yield runtime, str(server.make_url("/alerts"))
    await server.close()
    await runtime.close()


def proposals_in(runtime: Runtime) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def probe() -> list[dict[str, Any]]:
        return [dict(r) for r in await rows(runtime, "SELECT status, target FROM proposals")]

    return probe


def only(status: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda found: len(found) == 1 and found[0]["status"] == status


async def test_alertmanager_fast_path_with_bearer_token(infraai, alertmanager_factory) -> None:
    runtime, url = infraai
    alertmanager = alertmanager_factory(url, token=TOKEN)
    labels = {
        "alertname": "KubePodCrashLooping",
        "namespace": "prod",
        "pod": "api-1",
        "severity": "critical",
    }
    alertmanager.post_alerts([{"labels": labels, "annotations": {"summary": "crash looping"}}])
    [found] = await eventually(
        proposals_in(runtime),
        only("pending"),
        within=20,
        what="a pending proposal",
        details=alertmanager.describe,
    )
    assert found["target"] == "prod/api-1"

    alertmanager.resolve(labels)
    await eventually(
        proposals_in(runtime),
        only("superseded"),
        within=20,
        what="the proposal superseded",
        details=alertmanager.describe,
    )
    [stored] = await rows(runtime, "SELECT status FROM alerts")
    assert stored["status"] == "resolved"


async def test_wrong_token_is_refused_and_retried_by_alertmanager(
    infraai, alertmanager_factory
) -> None:
    runtime, url = infraai
    alertmanager = alertmanager_factory(url, token="not-the-token")
    alertmanager.post_alerts([{"labels": {"alertname": "KubePodCrashLooping", "pod": "x"}}])

    async def refusals() -> str:
        return alertmanager.log_tail(200)

    await eventually(refusals, lambda log: "401" in log, within=20, what="a refused delivery")
    assert await rows(runtime, "SELECT id FROM alerts") == []


@pytest.mark.slow
async def test_prometheus_rule_fires_and_resolves(
    infraai, alertmanager_factory, prometheus_factory
) -> None:
    runtime, url = infraai
    await install_policies(
        runtime,
        policy(
            name="restart-on-target-down",
            matchers=['alertname="TargetDown"'],
            action="k8s.rollout_restart",
            params={"namespace": "{{ labels.namespace }}", "deployment": "{{ labels.job }}"},
        ),
    )
    target_port = free_port()
    alertmanager = alertmanager_factory(url, token=TOKEN)
    rules = alert_rule(
        "TargetDown",
        'up{job="checkout"} == 0',
        labels={"namespace": "shop", "severity": "critical"},
        annotations={"summary": "checkout is down"},
    )
    prometheus = prometheus_factory(
        rules=rules, alertmanager=alertmanager, scrape={"checkout": f"127.0.0.1:{target_port}"}
    )

    def details() -> str:
        return prometheus.describe() + "\n" + alertmanager.describe()

    [found] = await eventually(
        proposals_in(runtime),
        only("pending"),
        within=40,
        what="a pending proposal",
        details=details,
    )
    assert found["target"] == "shop/checkout"

    # The target comes back: Prometheus resolves the alert, Alertmanager sends it resolved.
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text="# healthy\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    target = TestServer(app, host="127.0.0.1", port=target_port)
    await target.start_server()
    try:
        await eventually(
            proposals_in(runtime),
            only("superseded"),
            within=40,
            what="the proposal superseded",
            details=details,
        )
    finally:
        await target.close()
