"""Real `infraai worker` processes on real Redis and PostgreSQL, acting on the fake Kubernetes
API server: approved proposals run once and report in their Slack thread, failures say why,
a worker killed mid-job ends in a visible "worker lost", and four workers racing over
duplicated jobs still run each proposal exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus

from core.alerts.webhook import parse_payload
from core.db.models import JobLog, Proposal
from core.db.types import utcnow
from core.execution.executor import QUEUE_NAME, RQExecutor
from core.maintenance import ORPHAN_AFTER, run_maintenance
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.execution_helpers import current, job_logs, owned_pod, proposal_row
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.helpers import crashloop, eventually, install_policies, payload, policy
from tests.stack import APPROVER, CHANNEL, REDIS_URL, Stack, flush_redis, make_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POD_PATH = "/api/v1/namespaces/prod/pods/api-1"


@dataclass
class Kube:
    fake: FakeKubeAPI
    kubeconfig: Path


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    """The fake API server on its own thread: worker processes reach it over loopback."""
    fake = FakeKubeAPI()
    owned_pod(fake, "prod", "api-1")
    with fake.run_in_thread() as url:
        yield Kube(fake, write_kubeconfig(tmp_path / "kubeconfig", url))


@pytest.fixture
async def stack(pg_db: str, kube: Kube) -> AsyncIterator[Stack]:
    async for s in make_stack(pg_db, policy(), kubeconfig=str(kube.kubeconfig)):
        yield s


def worker_env(database_url: str, kubeconfig: Path, **extra: str) -> dict[str, str]:
    """The worker's whole configuration comes from its environment, as in production."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "INFRAAI_", "VSPHERE_", "KUBE", "DATABASE_", "REDIS_"))
    }
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


async def start_worker(
    env: dict[str, str], *args: str, log: Path | None = None
) -> asyncio.subprocess.Process:
    """A worker process. Long-lived ones log to a file: a pipe nobody reads fills up
    (64 KiB) and blocks the worker mid-job."""
    output: Any = asyncio.subprocess.PIPE if log is None else log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "worker",
            *args,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        if log is not None:
            output.close()


async def run_burst(env: dict[str, str], within: float = 60) -> str:
    """`infraai worker --burst`: runs what is queued, then exits 0; returns its output."""
    process = await start_worker(env, "--burst")
    try:
        output, _ = await asyncio.wait_for(process.communicate(), within)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    return text


def worker_requests(fake: FakeKubeAPI) -> list[Any]:
    """What reached the API server from the workers: the bot's own background health checks
    (`GET /version/`) left out."""
    return [r for r in fake.requests if r.path != "/version/"]


def queue() -> Queue:
    return Queue(QUEUE_NAME, connection=Redis.from_url(REDIS_URL))


async def approve_first_proposal(stack: Stack) -> None:
    await stack.post_alerts(payload(crashloop()))
    message = await stack.slack.wait_for_message(
        CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
    )
    await stack.click("proposal_approve", "1", message_ts=message.ts)
    await eventually(
        lambda: asyncio.to_thread(lambda: list(queue().job_ids)),
        lambda ids: ids == ["proposal-1"],
        within=10,
        what="the job to be queued",
    )


async def thread_reply(stack: Stack, needle: str) -> str:
    def find() -> str | None:
        for m in stack.slack.messages(CHANNEL):
            if m.thread_ts and m.thread_ts != m.ts and needle in m.all_text():
                return m.all_text()
        return None

    return await stack.slack.wait_for(find, timeout=15)


async def test_an_approved_proposal_runs_on_a_worker_and_reports_in_its_thread(
    stack: Stack, kube: Kube, pg_db: str
) -> None:
    await approve_first_proposal(stack)

    await run_burst(worker_env(pg_db, kube.kubeconfig))

    assert [(r.method, r.path) for r in worker_requests(kube.fake)] == [
        ("GET", POD_PATH),
        ("DELETE", POD_PATH),
    ]
    sessions = stack.runtime.sessions
    assert (await proposal_row(sessions, 1)).status == "succeeded"
    [log] = await job_logs(sessions, 1)
    assert (log.attempt, log.status, log.rq_job_id) == (1, "succeeded", "proposal-1")
    assert log.worker_name  # RQ's worker name, as `rq info` shows it
    reply = await thread_reply(stack, "Succeeded")
    assert f"DELETE {POD_PATH} propagationPolicy=Background" in reply
    job = Job.fetch("proposal-1", connection=Redis.from_url(REDIS_URL))
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "deleted pod prod/api-1; ReplicaSet/web-5d4f8b7c9a will replace it"


async def test_a_failing_action_fails_with_the_error_in_the_log_and_the_thread(
    stack: Stack, kube: Kube, pg_db: str
) -> None:
    kube.fake.forbid("prod", "delete")
    await approve_first_proposal(stack)

    await run_burst(worker_env(pg_db, kube.kubeconfig))

    proposal = await proposal_row(stack.runtime.sessions, 1)
    assert proposal.status == "failed"
    assert proposal.status_reason is not None
    assert proposal.status_reason.startswith("forbidden: cannot delete pod prod/api-1")
    [log] = await job_logs(stack.runtime.sessions, 1)
    assert (log.status, log.error) == ("failed", proposal.status_reason)
    reply = await thread_reply(stack, "Failed")
    assert "Failed after 1 attempt(s): forbidden: cannot delete pod prod/api-1" in reply
    assert "api-1" in kube.fake.pods["prod"]


async def test_a_worker_killed_mid_job_ends_in_worker_lost(
    stack: Stack, kube: Kube, pg_db: str
) -> None:
    kube.fake.delay = 60  # the pod read hangs until the worker is gone
    await approve_first_proposal(stack)
    env = worker_env(pg_db, kube.kubeconfig, INFRAAI_ACTION_TIMEOUT_SECONDS="600")
    worker = await start_worker(env, "--burst")
    try:
        sessions = stack.runtime.sessions
        await eventually(
            lambda: job_logs(sessions, 1),
            lambda logs: bool(logs) and logs[0].status == "running",
            within=30,
            what="the job to start",
        )
        await eventually(
            lambda: current(lambda: len(worker_requests(kube.fake))),
            bool,
            within=30,
            what="the pod read to reach the API server",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGKILL)
        output = await worker.communicate()
    assert worker.returncode == -signal.SIGKILL, output
    [log] = await job_logs(sessions, 1)
    assert log.status == "running"  # nobody could record an end: only the sweep can

    upkeep = await run_maintenance(
        sessions,
        stack.runtime.executor,
        lost_after=timedelta(seconds=1),
        now=utcnow() + timedelta(seconds=5),  # past the last heartbeat, whenever it landed
    )

    assert upkeep.lost == [1]
    proposal = await proposal_row(sessions, 1)
    assert proposal.status == "failed"
    assert proposal.status_reason is not None
    assert proposal.status_reason.startswith(f"worker lost: {log.worker_name} stopped answering")
    [log] = await job_logs(sessions, 1)
    assert (log.status, log.error) == ("failed", proposal.status_reason)
    assert stack.runtime.drain is not None
    stack.runtime.drain.wake()
    reply = await thread_reply(stack, "worker lost")
    assert "may or may not have run" in reply
    assert kube.fake.writes() == []


async def test_an_approval_made_while_redis_was_down_is_queued_by_maintenance(
    pg_db: str, kube: Kube
) -> None:
    await flush_redis()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings = make_settings(
        pg_db, redis_url=f"redis://127.0.0.1:{closed}/15", infraai_approvers=(APPROVER,)
    )
    runtime = Runtime.build(settings)
    executor = RQExecutor(REDIS_URL, job_timeout=60)
    try:
        await install_policies(runtime, policy())
        await runtime.alerts.ingest(parse_payload(payload(crashloop())))
        outcome = await runtime.approvals.decide(1, APPROVER, True)
        assert outcome.ok
        assert outcome.execution == (
            "approved; the queue is unavailable, it will be queued when it is back"
        )
        assert (await proposal_row(runtime.sessions, 1)).status == "approved"

        too_early = await run_maintenance(runtime.sessions, executor)
        assert too_early.requeued == []  # a click a moment ago may still be on its way
        upkeep = await run_maintenance(runtime.sessions, executor, now=utcnow() + 2 * ORPHAN_AFTER)
        assert upkeep.requeued == [1]
        assert list(queue().job_ids) == ["proposal-1"]

        await run_burst(worker_env(pg_db, kube.kubeconfig))

        assert (await proposal_row(runtime.sessions, 1)).status == "succeeded"
        assert [r.method for r in kube.fake.writes()] == ["DELETE"]
    finally:
        await executor.close()
        await runtime.close()


async def test_a_job_that_ended_without_running_its_proposal_is_replaced_by_maintenance(
    pg_db: str, kube: Kube
) -> None:
    """RQ keeps an ended job (and refuses its id) for days: a job that failed before it
    claimed its proposal must not leave the proposal approved for that long."""
    await flush_redis()
    settings = make_settings(pg_db, redis_url=REDIS_URL, infraai_approvers=(APPROVER,))
    runtime = Runtime.build(settings)
    try:
        await install_policies(runtime, policy())
        await runtime.alerts.ingest(parse_payload(payload(crashloop())))
        assert (await runtime.approvals.decide(1, APPROVER, True)).execution == "queued"
        redis = Redis.from_url(REDIS_URL)
        job = Job.fetch("proposal-1", connection=redis)
        queue().remove(job)  # as if a worker took it and it failed before claiming
        job.set_status(JobStatus.FAILED)

        upkeep = await run_maintenance(
            runtime.sessions, runtime.executor, now=utcnow() + 2 * ORPHAN_AFTER
        )

        assert upkeep.requeued == [1]
        assert list(queue().job_ids) == ["proposal-1"]
        await run_burst(worker_env(pg_db, kube.kubeconfig))
        assert (await proposal_row(runtime.sessions, 1)).status == "succeeded"
        # A job still waiting in the queue is left alone: no duplicate.
        assert await runtime.executor.enqueue(1) == "queued"  # the finished job is replaced
        assert await runtime.executor.enqueue(1) == "already queued"
        assert list(queue().job_ids) == ["proposal-1"]
    finally:
        await runtime.close()


async def test_the_embedded_default_runs_in_process_and_reports_in_the_thread(
    pg_db: str, kube: Kube
) -> None:
    async for stack in make_stack(pg_db, policy(), redis=False, kubeconfig=str(kube.kubeconfig)):
        await stack.post_alerts(payload(crashloop()))
        message = await stack.slack.wait_for_message(
            CHANNEL, lambda m: "proposal_approve" in m.button_values(), timeout=10
        )
        await stack.click("proposal_approve", "1", message_ts=message.ts)
        reply = await thread_reply(stack, "Succeeded")
        assert f"DELETE {POD_PATH} propagationPolicy=Background" in reply
        assert [r.method for r in kube.fake.writes()] == ["DELETE"]
        assert (await proposal_row(stack.runtime.sessions, 1)).status == "succeeded"


@pytest.mark.slow
async def test_four_workers_run_two_hundred_duplicated_jobs_exactly_once(
    pg_db: str, tmp_path: Path
) -> None:
    """Every proposal is queued twice (its own job and a duplicate under another id, side by
    side in the queue) so workers really race for the same proposal; each runs once."""
    pods = [f"web-{i}" for i in range(200)]
    fake = FakeKubeAPI()
    for pod in pods:
        owned_pod(fake, "prod", pod)
    await flush_redis()
    redis = Redis.from_url(REDIS_URL)
    with fake.run_in_thread() as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        settings = make_settings(pg_db, redis_url=REDIS_URL, infraai_approvers=(APPROVER,))
        runtime = Runtime.build(settings)
        workers: list[asyncio.subprocess.Process] = []
        try:
            await install_policies(runtime, policy())
            outcome = await runtime.alerts.ingest(
                parse_payload(payload(*(crashloop(pod=p) for p in pods)))
            )
            assert outcome.proposals == 200
            env = worker_env(pg_db, kubeconfig)
            workers = [
                await start_worker(
                    env, "--name", f"worker-{n}-{os.getpid()}", log=tmp_path / f"worker-{n}.log"
                )
                for n in range(4)
            ]
            await eventually(
                lambda: asyncio.to_thread(Worker.count, connection=redis),
                lambda n: n == 4,
                within=60,
                what="four workers to register",
            )
            async with runtime.sessions() as session:
                ids = list((await session.scalars(sa.select(Proposal.id))).all())
            for pid in ids:
                decided = await runtime.approvals.decide(pid, APPROVER, True)
                assert decided.execution == "queued"
                queue().enqueue(
                    "core.execution.worker.run_proposal_job", pid, job_id=f"duplicate-{pid}"
                )

            async def statuses() -> Counter[str]:
                async with runtime.sessions() as session:
                    rows = (await session.execute(sa.select(Proposal.status))).scalars()
                    return Counter(rows)

            await eventually(
                statuses,
                lambda c: c == Counter({"succeeded": 200}),
                within=120,
                what="every proposal to succeed",
            )
            await eventually(
                lambda: asyncio.to_thread(lambda: queue().count),
                lambda n: n == 0,
                within=60,
                what="the duplicates to drain",
            )
        finally:
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGTERM)  # warm shutdown: finish, then exit
            for worker in workers:
                await asyncio.wait_for(worker.wait(), 30)
            await runtime.close()

        deletes = Counter(r.path for r in fake.requests if r.method == "DELETE")
        gets = Counter(r.path for r in fake.requests if r.method == "GET")
        expected = Counter(f"/api/v1/namespaces/prod/pods/{p}" for p in pods)
        assert deletes == expected and gets == expected
        assert len(fake.requests) == 400
        assert fake.pods["prod"] == {}
    logs = await _all_logs(pg_db)
    assert len(logs) == 200
    assert {(log["attempt"], log["status"]) for log in logs} == {(1, "succeeded")}
    assert len({log["proposal_id"] for log in logs}) == 200
    # All four were registered and blocked on the queue before the first job: each took some.
    assert {log["worker_name"] for log in logs} == {f"worker-{n}-{os.getpid()}" for n in range(4)}
    results = [
        str(Job.fetch(f"{prefix}-{pid}", connection=redis).return_value())
        for prefix in ("proposal", "duplicate")
        for pid in ids
    ]
    ran = [r for r in results if r.startswith("deleted pod")]
    skipped = [r for r in results if r.endswith("nothing to run")]
    assert len(ran) == 200 and len(skipped) == 200


async def _all_logs(database_url: str) -> list[dict[str, Any]]:
    from core.db.engine import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.select(JobLog.proposal_id, JobLog.attempt, JobLog.status, JobLog.worker_name)
            )
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()
