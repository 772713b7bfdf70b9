"""A dead integration must not stall the bot: with a vCenter that accepts TCP and never
answers (a tarpit), dozens of `/readyz` and `/infraai status` calls in flight, alerts are
still recorded and an approval still runs a Kubernetes action; a `/readyz` flood does not
exhaust the database pool; and no health answer tells an HTTP client which driver, host or
database is behind it.

Timeouts here are hang guards only: nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from core import health
from core.db.engine import create_engine
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.execution_helpers import current, owned_pod
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.fakes.slack_signing import slash_command_body
from tests.fakes.tarpit import Tarpit, tarpit
from tests.helpers import crashloop, eventually, payload, policy, rows
from tests.stack import CHANNEL, REDIS_URL, Stack, make_stack

GUARD = 30.0  # seconds: a hang guard, far above what any step needs
DEADLINE = 3.0  # the health monitor's per-check deadline in these tests
PROBES = 24  # concurrent /readyz and as many /infraai status: more than any default pool


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pit() -> Iterator[Tarpit]:
    with tarpit() as wedged_vcenter:
        yield wedged_vcenter


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    owned_pod(api, "prod", "api-1")
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline the wedged vCenter's check reaches quickly. The Kubernetes client is
    imported first: its first import alone can take a second on a busy machine, and the
    healthy cluster must not be reported failing for it."""
    importlib.import_module("adapters.kubernetes")
    monkeypatch.setattr(health, "CHECK_DEADLINE", DEADLINE)


async def wedged_stack(
    db_url: str, pit: Tarpit, kubeconfig: Path, *, redis: bool
) -> AsyncIterator[Stack]:
    async for stack in make_stack(
        db_url,
        policy(),
        redis=redis,
        kubeconfig=str(kubeconfig),
        vsphere_host=pit.host,
        vsphere_user="infraai",
        vsphere_password="secret",
        vsphere_insecure=True,
    ):
        yield stack


async def status_reply(stack: Stack) -> str:
    url = stack.slack.new_response_url(CHANNEL)
    body = slash_command_body("status", user_id="U0ALICE", channel_id=CHANNEL, response_url=url)
    assert (await stack.signed(body)).status == 200
    [post] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=GUARD)
    return json.dumps(post.body)


async def readyz(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def approve_the_first_proposal(stack: Stack) -> None:
    message = await stack.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=GUARD
    )
    response = await stack.click("proposal_approve", "1", message_ts=message.ts)
    assert response.status == 200


async def alerts_and_approvals_flow_while_probes_pile_up(
    stack: Stack, pit: Tarpit, then: Callable[[Stack], Awaitable[None]]
) -> None:
    probes = [asyncio.create_task(readyz(stack.client)) for _ in range(PROBES)]
    statuses = [asyncio.create_task(status_reply(stack)) for _ in range(PROBES)]
    await eventually(
        lambda: current(lambda: pit.connections),
        lambda n: n >= 1,
        within=GUARD,
        what="a health check to reach the wedged vCenter",
    )

    delivery = stack.client.post("/alerts", data=json.dumps(payload(crashloop(pod="api-1"))))
    response = await asyncio.wait_for(delivery, GUARD)
    assert response.status == 200
    assert await response.json() == {"received": 1, "proposals": 1}
    await asyncio.wait_for(approve_the_first_proposal(stack), GUARD)
    await then(stack)

    for status, body in await asyncio.wait_for(asyncio.gather(*probes), GUARD):
        assert status == 200, body
        assert body["checks"]["database"] == {"ok": True, "detail": "ok"}
        assert body["integrations"]["kubernetes"]["state"] == "ok"
        vsphere = body["integrations"]["vsphere"]
        assert vsphere["state"] == "failing"
        assert vsphere["detail"].startswith(f"no answer within {DEADLINE:g} s")
    for text in await asyncio.wait_for(asyncio.gather(*statuses), GUARD):
        assert "*vsphere*" in text and "failing" in text and "no answer within" in text


@pytest.mark.usefixtures("short_deadline")
async def test_a_wedged_vcenter_stalls_neither_alerts_nor_in_process_actions(
    db_url: str, pit: Tarpit, kube: FakeKubeAPI, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
    async for stack in wedged_stack(db_url, pit, kubeconfig, redis=False):

        async def the_pod_was_restarted(stack: Stack) -> None:
            await eventually(
                lambda: rows(stack.runtime, "SELECT status FROM proposals"),
                lambda found: [r["status"] for r in found] == ["succeeded"],
                within=GUARD,
                what="the approved restart to succeed",
            )
            assert [(r.method, r.path) for r in kube.writes()] == [
                ("DELETE", "/api/v1/namespaces/prod/pods/api-1")
            ]

        await alerts_and_approvals_flow_while_probes_pile_up(stack, pit, the_pod_was_restarted)


@pytest.mark.integration
@pytest.mark.usefixtures("short_deadline")
async def test_a_wedged_vcenter_does_not_stall_the_rq_enqueue_of_an_approval(
    pg_db: str, pit: Tarpit, kube: FakeKubeAPI, tmp_path: Path
) -> None:
    from redis import Redis
    from rq import Queue

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
    queue = Queue("infraai", connection=Redis.from_url(REDIS_URL))
    async for stack in wedged_stack(pg_db, pit, kubeconfig, redis=True):

        async def the_job_was_queued(stack: Stack) -> None:
            await stack.slack.wait_for(lambda: queue.job_ids == ["proposal-1"], timeout=GUARD)

        await alerts_and_approvals_flow_while_probes_pile_up(stack, pit, the_job_was_queued)


@pytest.mark.usefixtures("short_deadline")
async def test_a_check_still_waiting_is_not_started_again(
    sqlite_db: str, pit: Tarpit, kube: FakeKubeAPI, tmp_path: Path
) -> None:
    """Each refresh finds the previous vSphere check still stuck: it reports that, and the
    wedged vCenter sees no second health connection meanwhile."""
    settings = make_settings(
        sqlite_db,
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", kube.url)),
        vsphere_host=pit.host,
        vsphere_user="infraai",
        vsphere_password="secret",
        vsphere_insecure=True,
    )
    runtime = Runtime.build(settings)
    try:
        monitor = runtime.health
        first = {h.name: h for h in await asyncio.wait_for(monitor.refresh(), GUARD)}
        assert first["vsphere"].state == "failing"
        assert first["vsphere"].detail == f"no answer within {DEADLINE:g} s"
        seen = pit.connections
        for _ in range(3):
            again = {h.name: h for h in await asyncio.wait_for(monitor.refresh(), GUARD)}
            assert again["vsphere"].state == "failing"
            assert again["vsphere"].detail == (
                f"no answer within {DEADLINE:g} s (the previous check has not returned)"
            )
            assert again["kubernetes"].state == "ok"
        assert pit.connections == seen
    finally:
        await asyncio.wait_for(runtime.close(), GUARD)


@pytest.mark.integration
async def test_a_readyz_flood_does_not_exhaust_a_small_pool(pg_db: str) -> None:
    """200 probes at once against a pool of one connection that lets nobody wait long."""
    engine = create_engine(pg_db, pool_size=1, max_overflow=0, pool_timeout=0.1)
    runtime = Runtime.build(make_settings(pg_db), engine=engine)
    try:
        async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as client:
            answers = await asyncio.wait_for(
                asyncio.gather(*(readyz(client) for _ in range(200))), GUARD
            )
        down = [body for status, body in answers if status != 200]
        assert down == []
        assert all(
            body["checks"]["database"] == {"ok": True, "detail": "ok"} for _, body in answers
        )
    finally:
        await runtime.close()


async def test_health_answers_name_no_driver_host_or_database(
    kube: FakeKubeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Everything down or failing: the 503 says what, never the why an attacker could use;
    the why goes to the log."""
    await kube.stop()  # the cluster is gone: its health check fails with the address
    database_name = "infraai_secret_name"
    settings = make_settings(
        f"postgresql+asyncpg://postgres@127.0.0.1:1/{database_name}",
        redis_url="redis://127.0.0.1:1/0",
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", kube.url)),
        vsphere_host=f"127.0.0.1:{closed_port()}",
        vsphere_user="infraai",
        vsphere_password="secret",
        vsphere_insecure=True,
    )
    runtime = Runtime.build(settings)
    runtime.health.deadline = GUARD  # the check fails on its own (refused), not by deadline
    caplog.set_level(logging.WARNING)
    try:
        async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as client:
            response = await asyncio.wait_for(client.get("/readyz"), GUARD)
            text = await response.text()
        assert response.status == 503
        body = json.loads(text)
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == {"ok": False, "detail": "unavailable"}
        assert body["checks"]["redis"] == {"ok": False, "detail": "unavailable"}
        assert body["integrations"]["kubernetes"]["state"] == "failing"
        assert body["integrations"]["vsphere"]["state"] == "failing"
        for leak in ("127.0.0.1", database_name, "asyncpg", "Errno", "onnect", "postgres"):
            assert leak not in text, f"{leak!r} in {text}"
        assert database_name in caplog.text or "127.0.0.1" in caplog.text  # logged instead
    finally:
        await asyncio.wait_for(runtime.close(), GUARD)
