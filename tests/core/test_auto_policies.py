"""Auto policies run without a person but inside the guard rails: the hourly cap and the
cooldown hold under an alert storm (the rest is recorded `rate_limited` and never runs), the
`auto_paused` switch turns them back into proposals for a person, and dry runs write
nothing. Alerts go through POST /alerts; execution is in-process against the fake
Kubernetes API; both databases."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from core.commands import Text, run_command
from core.db.models import Proposal
from core.execution.job import JobContext, execute_proposal
from core.runtime import Runtime
from core.switches import AUTO_PAUSED, get_switch, set_switch
from tests.conftest import make_settings
from tests.execution_helpers import job_logs, owned_pod, thread_texts
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.helpers import crashloop, eventually, install_policies, payload, policy

APPROVER = "U0ALICE"
PODS = [f"api-{i}" for i in range(30)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    for pod in PODS:
        owned_pod(api, "prod", pod)
    await api.start()
    yield api
    await api.stop()


class Auto:
    def __init__(self, runtime: Runtime, client: TestClient[Any, Any], fake: FakeKubeAPI):
        self.runtime = runtime
        self.client = client
        self.fake = fake

    async def post(self, *alerts: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post("/alerts", data=json.dumps(payload(*alerts)))
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def statuses(self) -> Counter[str]:
        async with self.runtime.sessions() as session:
            return Counter((await session.scalars(sa.select(Proposal.status))).all())

    async def settled(self) -> Counter[str]:
        """Statuses once nothing is approved or running any more (auto jobs are done)."""
        return await eventually(
            self.statuses,
            lambda c: c["approved"] == 0 and c["running"] == 0,
            within=30,
            what="auto-approved jobs to finish",
        )

    async def proposals(self, status: str) -> list[Proposal]:
        async with self.runtime.sessions() as session:
            query = sa.select(Proposal).where(Proposal.status == status).order_by(Proposal.id)
            return list((await session.scalars(query)).all())

    def deletes(self) -> list[str]:
        return [r.path.rsplit("/", 1)[1] for r in self.fake.writes() if r.method == "DELETE"]


async def make_auto(
    db_url: str, fake: FakeKubeAPI, tmp_path: Path, *specs: Any, **settings: Any
) -> AsyncIterator[Auto]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url)
    config = make_settings(
        db_url, kubeconfig=str(kubeconfig), infraai_approvers=(APPROVER,), **settings
    )
    runtime = Runtime.build(config)
    await install_policies(runtime, *specs)
    async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as client:
        yield Auto(runtime, client, fake)
    await runtime.close()


def auto_policy(**overrides: Any) -> Any:
    return policy(approval="auto", **overrides)


@pytest.fixture
async def capped(db_url: str, fake: FakeKubeAPI, tmp_path: Path) -> AsyncIterator[Auto]:
    async for auto in make_auto(db_url, fake, tmp_path, auto_policy(max_runs_per_hour=5)):
        yield auto


async def test_a_storm_runs_at_most_the_hourly_cap(capped: Auto) -> None:
    body = await capped.post(*(crashloop(pod=p) for p in PODS))

    assert body == {"received": 30, "proposals": 30}
    assert await capped.settled() == Counter({"succeeded": 5, "rate_limited": 25})
    ran = [p.params["pod"] for p in await capped.proposals("succeeded")]
    assert sorted(capped.deletes()) == sorted(ran)
    for proposal in await capped.proposals("rate_limited"):
        assert proposal.status_reason == "hourly cap: 5 proposals in the last hour"
        assert proposal.decided_by is None
        assert await job_logs(capped.runtime.sessions, proposal.id) == []

    # Later in the hour, another storm: the cap is already spent.
    more = [f"db-{i}" for i in range(10)]
    for pod in more:
        owned_pod(capped.fake, "prod", pod)
    await capped.post(*(crashloop(pod=p) for p in more))
    assert await capped.settled() == Counter({"succeeded": 5, "rate_limited": 35})
    assert len(capped.deletes()) == 5


async def test_a_storm_of_concurrent_deliveries_still_runs_at_most_the_cap(capped: Auto) -> None:
    bodies = await asyncio.gather(*(capped.post(crashloop(pod=p)) for p in PODS))

    assert sum(b["proposals"] for b in bodies) == 30
    assert await capped.settled() == Counter({"succeeded": 5, "rate_limited": 25})
    assert len(capped.deletes()) == 5


async def test_a_rate_limited_proposal_never_runs(capped: Auto) -> None:
    await capped.post(*(crashloop(pod=p) for p in PODS[:6]))
    await capped.settled()
    [limited] = await capped.proposals("rate_limited")

    outcome = await capped.runtime.approvals.decide(limited.id, APPROVER, True)
    assert not outcome.ok
    assert outcome.message == f"Proposal #{limited.id}: rate limited: it will not run."
    runtime = capped.runtime
    ctx = JobContext(runtime.settings, runtime.sessions, runtime.integrations)
    assert await execute_proposal(ctx, limited.id) == (
        f"proposal {limited.id} is rate_limited: nothing to run"
    )
    assert limited.params["pod"] not in capped.deletes()


async def test_the_cooldown_holds_between_episodes(
    db_url: str, fake: FakeKubeAPI, tmp_path: Path
) -> None:
    owned_pod(fake, "prod", "web-1")
    async for auto in make_auto(db_url, fake, tmp_path, auto_policy(cooldown_seconds=600)):
        await auto.post(crashloop(pod="api-1", starts_at="2026-11-29T08:00:00Z"))
        assert await auto.settled() == Counter({"succeeded": 1})
        await auto.post(crashloop(pod="api-1", starts_at="2026-11-29T08:00:00Z", status="resolved"))
        # The pod crash-loops again (a new episode) inside the cooldown: recorded, not run.
        await auto.post(crashloop(pod="api-1", starts_at="2026-11-29T08:05:00Z"))
        # Another pod is another dedup key: its own cooldown.
        await auto.post(crashloop(pod="web-1"))

        assert await auto.settled() == Counter({"succeeded": 2, "rate_limited": 1})
        [limited] = await auto.proposals("rate_limited")
        assert limited.params == {"namespace": "prod", "pod": "api-1"}
        assert limited.status_reason is not None
        assert limited.status_reason.startswith("cooldown: #1 ran this at ")
        assert sorted(auto.deletes()) == ["api-1", "web-1"]


async def test_pause_sends_auto_proposals_to_a_person_and_resume_restarts_them(
    db_url: str, fake: FakeKubeAPI, tmp_path: Path
) -> None:
    async for auto in make_auto(db_url, fake, tmp_path, auto_policy(max_runs_per_hour=10)):
        async with auto.runtime.sessions() as session, session.begin():
            assert await set_switch(session, AUTO_PAUSED, True, APPROVER)

        await auto.post(*(crashloop(pod=p) for p in PODS[:3]))

        assert await auto.settled() == Counter({"pending": 3})
        for proposal in await auto.proposals("pending"):
            assert proposal.status_reason == (
                "auto-remediation is paused: needs a person's approval"
            )
            assert proposal.expires_at is not None
        assert auto.fake.requests == []

        # A person can still approve one: it runs.
        first = (await auto.proposals("pending"))[0]
        assert (await auto.runtime.approvals.decide(first.id, APPROVER, True)).ok
        assert await auto.settled() == Counter({"pending": 2, "succeeded": 1})
        assert auto.deletes() == [first.params["pod"]]

        reply = await run_command(auto.runtime, APPROVER, "resume")
        assert isinstance(reply, Text) and reply.text.startswith("▶️ Auto-remediation resumed.")
        async with auto.runtime.sessions() as session:
            assert await get_switch(session, AUTO_PAUSED) is False

        # New alerts run by themselves again; what waited for a person still does.
        await auto.post(crashloop(pod=PODS[3]))
        assert await auto.settled() == Counter({"pending": 2, "succeeded": 2})
        assert sorted(auto.deletes()) == sorted([first.params["pod"], PODS[3]])


async def test_the_pause_command_stops_auto_policies(
    db_url: str, fake: FakeKubeAPI, tmp_path: Path
) -> None:
    async for auto in make_auto(db_url, fake, tmp_path, auto_policy()):
        refused = await run_command(auto.runtime, "U0MALLORY", "pause")
        assert not isinstance(refused, Text)
        reply = await run_command(auto.runtime, APPROVER, "pause")
        assert isinstance(reply, Text) and reply.text.startswith("⏸️ Auto-remediation paused")

        await auto.post(crashloop(pod="api-1"))

        assert await auto.settled() == Counter({"pending": 1})
        assert auto.fake.requests == []


@pytest.mark.parametrize("where", ["policy", "settings"])
async def test_an_auto_dry_run_writes_nothing_and_says_dry_run(
    db_url: str, fake: FakeKubeAPI, tmp_path: Path, where: str
) -> None:
    spec = auto_policy(dry_run=where == "policy")
    async for auto in make_auto(db_url, fake, tmp_path, spec, infraai_dry_run=where == "settings"):
        await auto.post(crashloop(pod="api-1"))

        assert await auto.settled() == Counter({"succeeded": 1})
        [proposal] = await auto.proposals("succeeded")
        assert proposal.dry_run is True
        assert fake.writes() == []
        assert [r.method for r in fake.requests] == ["GET"]
        [log] = await job_logs(auto.runtime.sessions, proposal.id)
        path = "/api/v1/namespaces/prod/pods/api-1"
        assert f"would send: DELETE {path} propagationPolicy=Background" in (log.output or "")
        [text] = await thread_texts(auto.runtime.sessions, proposal.id)
        assert text.startswith("🧪 Dry run")
