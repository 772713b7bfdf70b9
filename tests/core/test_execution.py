"""The job function and the maintenance sweeps, on SQLite and PostgreSQL, against the fake
Kubernetes API server: exactly what reaches the server, what the job logs and the thread say,
retries only for transient faults, dry runs that write nothing, and sweeps that leave no
proposal in a state nobody will leave."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.console import ConsoleNotifier, handle_line
from core.approvals import TrustedAuthorizer
from core.db.models import JobLog, Proposal
from core.db.types import utcnow
from core.execution.executor import InProcessExecutor
from core.execution.job import JobContext, execute_proposal, sweep_lost_jobs
from core.maintenance import ORPHAN_AFTER, run_maintenance
from core.policy.store import apply_policies
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.execution_helpers import (
    add_proposal,
    audit_verbs,
    current,
    job_context,
    job_logs,
    owned_pod,
    proposal_row,
    thread_texts,
)
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.helpers import crashloop, eventually, install_policies, payload, policy

STRATEGIC = "application/strategic-merge-patch+json"
POD_PATH = "/api/v1/namespaces/prod/pods/api-1"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/prod/deployments/web"
RESTART = ("k8s.restart_pod", {"namespace": "prod", "pod": "api-1"})


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    owned_pod(api, "prod", "api-1")
    api.add_deployment("prod", "web", replicas=2)
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def kubeconfig(fake: FakeKubeAPI, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", fake.url)


@pytest.fixture
async def ctx(db_url: str, kubeconfig: Path) -> AsyncIterator[JobContext]:
    async with job_context(db_url, kubeconfig) as context:
        yield context


def calls(fake: FakeKubeAPI) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# ---- success, through each Kubernetes write ---------------------------------------------


async def test_restart_pod_runs_once_and_records_everything(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART)

    result = await execute_proposal(ctx, pid, "proposal-1")

    assert result == "deleted pod prod/api-1; ReplicaSet/web-5d4f8b7c9a will replace it"
    assert calls(fake) == [("GET", POD_PATH), ("DELETE", POD_PATH)]
    assert fake.writes()[0].json_body == {"propagationPolicy": "Background"}
    assert "api-1" not in fake.pods["prod"]

    proposal = await proposal_row(ctx.sessions, pid)
    assert (proposal.status, proposal.status_reason) == ("succeeded", None)
    [log] = await job_logs(ctx.sessions, pid)
    assert (log.attempt, log.status, log.rq_job_id, log.worker_name) == (
        1,
        "succeeded",
        "proposal-1",
        "test-worker",
    )
    assert log.error is None and log.finished_at is not None and log.duration is not None
    assert log.duration >= 0 and log.started_at is not None
    assert log.finished_at >= log.started_at
    assert f"sent: DELETE {POD_PATH} propagationPolicy=Background" in (log.output or "")
    [text] = await thread_texts(ctx.sessions, pid)
    assert text.startswith("✅ Succeeded in ")
    assert f"sent: `DELETE {POD_PATH} propagationPolicy=Background`" in text
    assert await audit_verbs(ctx.sessions, pid) == ["execution.started", "execution.succeeded"]


async def test_rollout_restart_sends_kubectls_strategic_merge(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(
        ctx.sessions, "k8s.rollout_restart", {"namespace": "prod", "deployment": "web"}
    )

    await execute_proposal(ctx, pid)

    assert calls(fake) == [("GET", DEPLOYMENT_PATH), ("PATCH", DEPLOYMENT_PATH)]
    patch = fake.writes()[0]
    assert patch.content_type == STRATEGIC
    stamp = patch.json_body["spec"]["template"]["metadata"]["annotations"].pop(
        "kubectl.kubernetes.io/restartedAt"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert patch.json_body == {"spec": {"template": {"metadata": {"annotations": {}}}}}
    assert fake.deployments["prod"]["web"]["metadata"]["generation"] == 2
    assert (await proposal_row(ctx.sessions, pid)).status == "succeeded"


async def test_scale_patches_the_scale_subresource(ctx: JobContext, fake: FakeKubeAPI) -> None:
    pid = await add_proposal(
        ctx.sessions, "k8s.scale", {"namespace": "prod", "deployment": "web", "replicas": 5}
    )

    result = await execute_proposal(ctx, pid)

    assert result == "web: 2 → 5 replicas"
    scale = f"{DEPLOYMENT_PATH}/scale"
    assert calls(fake) == [("GET", scale), ("PATCH", scale)]
    assert fake.writes()[0].content_type == STRATEGIC
    assert fake.writes()[0].json_body == {"spec": {"replicas": 5}}
    assert fake.deployments["prod"]["web"]["spec"]["replicas"] == 5


async def test_scale_above_the_configured_maximum_is_refused_before_any_request(
    db_url: str, kubeconfig: Path, fake: FakeKubeAPI
) -> None:
    async with job_context(db_url, kubeconfig, infraai_max_replicas=4) as ctx:
        pid = await add_proposal(
            ctx.sessions, "k8s.scale", {"namespace": "prod", "deployment": "web", "replicas": 5}
        )
        result = await execute_proposal(ctx, pid)

        reason = "refused: 5 replicas is above the configured maximum of 4 (INFRAAI_MAX_REPLICAS)"
        assert result == f"failed: {reason}"
        assert fake.requests == []
        proposal = await proposal_row(ctx.sessions, pid)
        assert (proposal.status, proposal.status_reason) == ("failed", reason)
        [log] = await job_logs(ctx.sessions, pid)
        assert (log.attempt, log.status, log.error) == (1, "failed", reason)
        assert await thread_texts(ctx.sessions, pid) == [f"❌ Failed after 1 attempt(s): {reason}"]


@pytest.mark.parametrize("allowed", [False, True])
async def test_scale_to_zero_needs_a_policy_that_allows_it(
    ctx: JobContext, fake: FakeKubeAPI, allowed: bool
) -> None:
    spec = policy(
        name="park-web",
        action="k8s.scale",
        params={"namespace": "prod", "deployment": "web", "replicas": 0},
        allow_scale_to_zero=True,
    )
    async with ctx.sessions() as session, session.begin():
        await apply_policies(session, [spec], "test")
        policy_id = await session.scalar(sa.text("SELECT id FROM policies"))
    pid = await add_proposal(
        ctx.sessions,
        "k8s.scale",
        {"namespace": "prod", "deployment": "web", "replicas": 0},
        policy_id=policy_id if allowed else None,
    )

    await execute_proposal(ctx, pid)

    proposal = await proposal_row(ctx.sessions, pid)
    if allowed:
        assert proposal.status == "succeeded"
        assert fake.writes()[0].json_body == {"spec": {"replicas": 0}}
        assert fake.pods_of("prod", "web") == []
    else:
        assert proposal.status == "failed"
        assert proposal.status_reason == (
            "refused: scaling to 0 needs a policy with allow_scale_to_zero"
        )
        assert fake.requests == []


# ---- failures, retries ---------------------------------------------------------------------


async def test_a_missing_pod_fails_once_with_the_error_in_the_log_and_the_thread(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(ctx.sessions, "k8s.restart_pod", {"namespace": "prod", "pod": "gone"})

    assert await execute_proposal(ctx, pid) == "failed: pod prod/gone not found"

    assert calls(fake) == [("GET", "/api/v1/namespaces/prod/pods/gone")]
    proposal = await proposal_row(ctx.sessions, pid)
    assert (proposal.status, proposal.status_reason) == ("failed", "pod prod/gone not found")
    [log] = await job_logs(ctx.sessions, pid)
    assert (log.status, log.error, log.output) == ("failed", "pod prod/gone not found", None)
    assert await thread_texts(ctx.sessions, pid) == [
        "❌ Failed after 1 attempt(s): pod prod/gone not found"
    ]
    assert await audit_verbs(ctx.sessions, pid) == ["execution.started", "execution.failed"]


async def test_a_forbidden_write_is_not_retried(ctx: JobContext, fake: FakeKubeAPI) -> None:
    fake.forbid("prod", "delete")
    pid = await add_proposal(ctx.sessions, *RESTART)

    await execute_proposal(ctx, pid)

    assert calls(fake) == [("GET", POD_PATH), ("DELETE", POD_PATH)]
    [log] = await job_logs(ctx.sessions, pid)
    assert log.status == "failed"
    assert log.error is not None
    assert log.error.startswith("forbidden: cannot delete pod prod/api-1: User ")
    assert (await proposal_row(ctx.sessions, pid)).status == "failed"
    assert "api-1" in fake.pods["prod"]


async def test_transient_faults_are_retried_and_each_attempt_is_logged(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    fake.fail_next(2, code=503)
    pid = await add_proposal(ctx.sessions, *RESTART)

    await execute_proposal(ctx, pid, "proposal-9")

    assert calls(fake) == [("GET", POD_PATH)] * 3 + [("DELETE", POD_PATH)]
    logs = await job_logs(ctx.sessions, pid)
    assert [(log.attempt, log.status) for log in logs] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    for log in logs[:2]:
        assert log.error is not None and "Kubernetes API error 503 ServiceUnavailable" in log.error
    assert {log.rq_job_id for log in logs} == {"proposal-9"}
    assert (await proposal_row(ctx.sessions, pid)).status == "succeeded"
    [text] = await thread_texts(ctx.sessions, pid)
    assert text.startswith("✅ Succeeded")
    assert await audit_verbs(ctx.sessions, pid) == [
        "execution.started",
        "execution.retry",
        "execution.retry",
        "execution.succeeded",
    ]


async def test_transient_faults_stop_after_the_configured_attempts(
    db_url: str, kubeconfig: Path, fake: FakeKubeAPI
) -> None:
    fake.fail_next(10, code=500)
    async with job_context(db_url, kubeconfig, infraai_job_attempts=2) as ctx:
        pid = await add_proposal(ctx.sessions, *RESTART)
        await execute_proposal(ctx, pid)

        assert calls(fake) == [("GET", POD_PATH)] * 2
        logs = await job_logs(ctx.sessions, pid)
        assert [(log.attempt, log.status) for log in logs] == [(1, "failed"), (2, "failed")]
        proposal = await proposal_row(ctx.sessions, pid)
        assert proposal.status == "failed"
        assert proposal.status_reason == logs[-1].error
        [text] = await thread_texts(ctx.sessions, pid)
        assert text.startswith("❌ Failed after 2 attempt(s): Kubernetes API error 500")


@pytest.mark.parametrize("code", [404, 403, 401, 409, 422])
async def test_refusals_get_exactly_one_attempt(
    ctx: JobContext, fake: FakeKubeAPI, code: int
) -> None:
    fake.fail_next(1, code=code)
    pid = await add_proposal(ctx.sessions, *RESTART)

    await execute_proposal(ctx, pid)

    assert calls(fake) == [("GET", POD_PATH)]
    [log] = await job_logs(ctx.sessions, pid)
    assert log.status == "failed"
    assert (await proposal_row(ctx.sessions, pid)).status == "failed"


async def test_an_action_timeout_is_recorded_and_a_write_is_not_sent_twice(
    db_url: str, kubeconfig: Path, fake: FakeKubeAPI
) -> None:
    fake.delay = 0.4
    async with job_context(db_url, kubeconfig, infraai_action_timeout_seconds=0.1) as ctx:
        pid = await add_proposal(ctx.sessions, *RESTART)

        assert await execute_proposal(ctx, pid) == (
            "failed: timed out after 0.1 s; the action may still complete: "
            "check the target before trying again"
        )

        [log] = await job_logs(ctx.sessions, pid)
        assert log.status == "failed" and log.error is not None
        assert log.error.startswith("timed out after 0.1 s")
        # The abandoned attempt's thread finishes on its own; no second attempt joins it.
        await eventually(
            lambda: current(lambda: len(fake.requests)),
            lambda n: n >= 2,
            within=10,
            what="the abandoned attempt to finish",
        )
        assert calls(fake) == [("GET", POD_PATH), ("DELETE", POD_PATH)]


async def test_a_crash_in_the_action_fails_the_job_with_the_exception(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.execution import actions

    def explode(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(actions._HANDLERS, "k8s.restart_pod", explode)
    pid = await add_proposal(ctx.sessions, *RESTART)

    assert await execute_proposal(ctx, pid) == "failed: internal error: RuntimeError: boom"
    assert [log.status for log in await job_logs(ctx.sessions, pid)] == ["failed"]


async def test_params_that_no_longer_validate_fail_without_a_request(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(
        ctx.sessions, "k8s.restart_pod", {"namespace": "prod", "pod": "Bad Name"}
    )

    result = await execute_proposal(ctx, pid)

    assert result.startswith("failed: params no longer valid for k8s.restart_pod")
    assert fake.requests == []


async def test_kubernetes_not_configured_fails_with_the_reason(db_url: str) -> None:
    async with job_context(db_url, Path("/nonexistent/kubeconfig")) as ctx:
        pid = await add_proposal(ctx.sessions, *RESTART)
        result = await execute_proposal(ctx, pid)
        assert result.startswith("failed: Kubernetes is not configured: kubeconfig ")
        assert (await proposal_row(ctx.sessions, pid)).status == "failed"


# ---- exactly once ----------------------------------------------------------------------------


async def test_concurrent_runs_of_one_proposal_execute_it_once(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART)

    results = await asyncio.gather(*(execute_proposal(ctx, pid) for _ in range(8)))

    assert sum(r.startswith("deleted pod") for r in results) == 1
    assert (
        sum(r == f"proposal {pid} is running: nothing to run" for r in results)
        + sum(r == f"proposal {pid} is succeeded: nothing to run" for r in results)
        == 7
    )
    assert [r.method for r in fake.writes()] == ["DELETE"]
    assert len(await job_logs(ctx.sessions, pid)) == 1


@pytest.mark.parametrize("status", ["pending", "denied", "expired", "succeeded", "failed"])
async def test_only_an_approved_proposal_runs(
    ctx: JobContext, fake: FakeKubeAPI, status: str
) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART, status=status)

    assert await execute_proposal(ctx, pid) == f"proposal {pid} is {status}: nothing to run"
    assert fake.requests == []
    assert await job_logs(ctx.sessions, pid) == []
    assert (await proposal_row(ctx.sessions, pid)).status == status


async def test_an_unknown_proposal_is_nothing_to_run(ctx: JobContext) -> None:
    assert await execute_proposal(ctx, 4242) == "proposal 4242 is gone: nothing to run"


# ---- dry run -------------------------------------------------------------------------------


async def test_a_dry_run_proposal_reads_but_never_writes(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART, dry_run=True)

    await execute_proposal(ctx, pid)

    assert fake.writes() == []
    assert calls(fake) == [("GET", POD_PATH)]
    assert "api-1" in fake.pods["prod"]
    [log] = await job_logs(ctx.sessions, pid)
    assert log.status == "succeeded"
    assert f"would send: DELETE {POD_PATH} propagationPolicy=Background" in (log.output or "")
    [text] = await thread_texts(ctx.sessions, pid)
    assert text.startswith("🧪 Dry run in ")
    assert f"would send: `DELETE {POD_PATH} propagationPolicy=Background`" in text


@pytest.mark.parametrize(
    ("action", "params", "request_line"),
    [
        (
            "k8s.rollout_restart",
            {"namespace": "prod", "deployment": "web"},
            f"PATCH {DEPLOYMENT_PATH} ({STRATEGIC}) "
            '{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":',
        ),
        (
            "k8s.scale",
            {"namespace": "prod", "deployment": "web", "replicas": 3},
            f'PATCH {DEPLOYMENT_PATH}/scale ({STRATEGIC}) {{"spec":{{"replicas":3}}}}',
        ),
    ],
)
async def test_a_worker_in_shadow_mode_writes_nothing_whatever_the_proposal_says(
    db_url: str,
    kubeconfig: Path,
    fake: FakeKubeAPI,
    action: str,
    params: dict[str, Any],
    request_line: str,
) -> None:
    async with job_context(db_url, kubeconfig, infraai_dry_run=True) as ctx:
        pid = await add_proposal(ctx.sessions, action, params, dry_run=False)
        await execute_proposal(ctx, pid)

        assert fake.writes() == []
        [log] = await job_logs(ctx.sessions, pid)
        assert log.status == "succeeded"
        assert f"would send: {request_line}" in (log.output or "")
        [text] = await thread_texts(ctx.sessions, pid)
        assert text.startswith("🧪 Dry run")
    assert fake.deployments["prod"]["web"]["spec"]["replicas"] == 2
    assert fake.deployments["prod"]["web"]["metadata"]["generation"] == 1


async def test_a_dry_run_without_kubernetes_configured_describes_the_request(
    db_url: str,
) -> None:
    async with job_context(db_url, Path("/nonexistent/kubeconfig")) as ctx:
        pid = await add_proposal(ctx.sessions, *RESTART, dry_run=True)
        await execute_proposal(ctx, pid)
        [log] = await job_logs(ctx.sessions, pid)
        assert log.status == "succeeded"
        assert f"would send: DELETE {POD_PATH} propagationPolicy=Background" in (log.output or "")


# ---- heartbeat, lost workers, late finishers -------------------------------------------


async def test_a_running_job_beats_and_a_live_job_is_not_swept(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    fake.delay = 0.4
    pid = await add_proposal(ctx.sessions, *RESTART)
    job = asyncio.create_task(execute_proposal(ctx, pid))

    async def beats() -> list[JobLog]:
        return await job_logs(ctx.sessions, pid)

    await eventually(
        beats,
        lambda logs: (
            bool(logs)
            and logs[0].heartbeat_at is not None
            and logs[0].started_at is not None
            and logs[0].heartbeat_at > logs[0].started_at
        ),
        within=10,
        what="a heartbeat",
    )
    assert await sweep_lost_jobs(ctx.sessions, lost_after=timedelta(seconds=5)) == []
    assert (await job).startswith("deleted pod")
    assert (await proposal_row(ctx.sessions, pid)).status == "succeeded"


async def test_a_job_whose_heartbeat_stopped_is_failed_as_worker_lost(ctx: JobContext) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART)
    beat = utcnow() - timedelta(minutes=5)
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            sa.update(Proposal).where(Proposal.id == pid).values(status="running")
        )
        session.add(
            JobLog(
                proposal_id=pid,
                attempt=1,
                status="running",
                started_at=beat,
                heartbeat_at=beat,
                worker_name="host.123",
            )
        )

    assert await sweep_lost_jobs(ctx.sessions) == [pid]
    assert await sweep_lost_jobs(ctx.sessions) == []  # once

    proposal = await proposal_row(ctx.sessions, pid)
    assert proposal.status == "failed"
    assert proposal.status_reason is not None
    assert proposal.status_reason.startswith("worker lost: host.123 stopped answering")
    [log] = await job_logs(ctx.sessions, pid)
    assert (log.status, log.error) == ("failed", proposal.status_reason)
    [text] = await thread_texts(ctx.sessions, pid)
    assert text.startswith("💀 Failed: worker lost: host.123")
    assert "may or may not have run" in text
    assert await audit_verbs(ctx.sessions, pid) == ["execution.lost"]


async def test_a_worker_declared_lost_that_finishes_records_the_truth_and_does_not_retry(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    """A worker cut off from the database for longer than the heartbeat window is declared
    lost; if it then finishes, the proposal shows what really happened and no retry starts
    after the declaration."""
    fake.delay = 0.3
    fake.fail_next(1, code=503)  # the first attempt fails transiently, after the sweep
    pid = await add_proposal(ctx.sessions, *RESTART)
    job = asyncio.create_task(execute_proposal(ctx, pid))
    await eventually(lambda: job_logs(ctx.sessions, pid), bool, within=10, what="the job to start")
    lost = await sweep_lost_jobs(
        ctx.sessions, lost_after=timedelta(0), now=utcnow() + timedelta(seconds=5)
    )
    assert lost == [pid]

    await job

    assert calls(fake) == [("GET", POD_PATH)]  # no second attempt after being declared lost
    proposal = await proposal_row(ctx.sessions, pid)
    assert proposal.status == "failed"
    assert proposal.status_reason is not None
    assert "Kubernetes API error 503" in proposal.status_reason
    [log] = await job_logs(ctx.sessions, pid)
    assert log.status == "failed" and "503" in (log.error or "")
    texts = await thread_texts(ctx.sessions, pid)
    assert texts[0].startswith("💀 Failed: worker lost")
    assert texts[1].startswith("❌ Failed after 1 attempt(s): Kubernetes API error 503")


async def test_a_late_success_after_a_lost_declaration_is_recorded_as_success(
    ctx: JobContext, fake: FakeKubeAPI
) -> None:
    fake.delay = 0.3
    pid = await add_proposal(ctx.sessions, *RESTART)
    job = asyncio.create_task(execute_proposal(ctx, pid))
    await eventually(lambda: job_logs(ctx.sessions, pid), bool, within=10, what="the job to start")
    assert await sweep_lost_jobs(
        ctx.sessions, lost_after=timedelta(0), now=utcnow() + timedelta(seconds=5)
    ) == [pid]

    await job

    proposal = await proposal_row(ctx.sessions, pid)
    assert (proposal.status, proposal.status_reason) == ("succeeded", None)
    [log] = await job_logs(ctx.sessions, pid)
    assert (log.status, log.error) == ("succeeded", None)
    texts = await thread_texts(ctx.sessions, pid)
    assert [t[:1] for t in texts] == ["💀", "✅"]


# ---- maintenance -----------------------------------------------------------------------


class RecordingExecutor:
    def __init__(self, fail: bool = False) -> None:
        self.enqueued: list[int] = []
        self.fail = fail

    async def enqueue(self, proposal_id: int) -> str:
        if self.fail:
            raise ConnectionError("redis down")
        self.enqueued.append(proposal_id)
        return "queued"

    async def ping(self) -> tuple[bool, str]:
        return True, "ok"

    async def close(self) -> None:
        return None


async def test_maintenance_expires_pending_proposals_past_their_deadline(ctx: JobContext) -> None:
    now = utcnow()
    due = await add_proposal(
        ctx.sessions, *RESTART, status="pending", expires_at=now - timedelta(seconds=1)
    )
    fresh = await add_proposal(
        ctx.sessions,
        "k8s.restart_pod",
        {"namespace": "prod", "pod": "api-2"},
        status="pending",
        expires_at=now + timedelta(minutes=5),
    )

    upkeep = await run_maintenance(ctx.sessions, RecordingExecutor(), now=now)

    assert (upkeep.expired, upkeep.lost, upkeep.requeued) == ([due], [], [])
    assert (await proposal_row(ctx.sessions, due)).status == "expired"
    assert (await proposal_row(ctx.sessions, fresh)).status == "pending"
    assert await thread_texts(ctx.sessions, due) == ["⌛ Expired: nobody decided in time."]
    assert await audit_verbs(ctx.sessions, due) == ["proposal.expired"]
    again = await run_maintenance(ctx.sessions, RecordingExecutor(), now=now)
    assert again.expired == []


async def test_maintenance_requeues_approved_proposals_that_never_reached_the_queue(
    ctx: JobContext,
) -> None:
    now = utcnow()
    orphan = await add_proposal(ctx.sessions, *RESTART, decided_at=now - 2 * ORPHAN_AFTER)
    just_approved = await add_proposal(
        ctx.sessions, "k8s.restart_pod", {"namespace": "prod", "pod": "api-2"}, decided_at=now
    )
    started = await add_proposal(
        ctx.sessions,
        "k8s.restart_pod",
        {"namespace": "prod", "pod": "api-3"},
        decided_at=now - 2 * ORPHAN_AFTER,
    )
    async with ctx.sessions() as session, session.begin():
        session.add(JobLog(proposal_id=started, attempt=1, status="failed"))

    executor = RecordingExecutor()
    upkeep = await run_maintenance(ctx.sessions, executor, now=now)
    assert upkeep.requeued == [orphan] and executor.enqueued == [orphan]
    assert just_approved not in executor.enqueued

    down = RecordingExecutor(fail=True)  # the queue is still down: try again next time
    assert (await run_maintenance(ctx.sessions, down, now=now)).requeued == []


async def test_a_requeued_orphan_runs_in_process(ctx: JobContext, fake: FakeKubeAPI) -> None:
    pid = await add_proposal(ctx.sessions, *RESTART, decided_at=utcnow() - 2 * ORPHAN_AFTER)
    executor = InProcessExecutor(ctx)

    assert (await run_maintenance(ctx.sessions, executor)).requeued == [pid]
    await executor.wait_idle()

    assert (await proposal_row(ctx.sessions, pid)).status == "succeeded"
    assert [r.method for r in fake.writes()] == ["DELETE"]


# ---- the embedded default: in-process execution, console notifier -----------------------


async def test_the_embedded_default_runs_an_approved_proposal_in_process(
    db_url: str, kubeconfig: Path, fake: FakeKubeAPI
) -> None:
    out = io.StringIO()
    settings = make_settings(db_url, kubeconfig=str(kubeconfig))
    runtime = Runtime.build(settings, authorizer=TrustedAuthorizer())  # as `infraai serve`
    try:
        assert isinstance(runtime.executor, InProcessExecutor)
        runtime.attach_notifier(ConsoleNotifier(out)).pacer.interval = 0
        await install_policies(runtime, policy())
        from core.alerts.webhook import parse_payload

        outcome = await runtime.alerts.ingest(parse_payload(payload(crashloop())))
        assert outcome.proposals == 1

        reply = await handle_line(runtime, "approve 1")
        assert reply == "Approved proposal #1 · running."
        await runtime.executor.wait_idle()
        assert runtime.drain is not None
        while await runtime.drain.drain_once():
            pass

        assert [r.method for r in fake.writes()] == ["DELETE"]
        text = out.getvalue()
        assert "↳ #1 ✅ Succeeded in " in text
        assert f"DELETE {POD_PATH} propagationPolicy=Background" in text
        async with runtime.sessions() as session:
            status = await session.scalar(sa.select(Proposal.status).where(Proposal.id == 1))
        assert status == "succeeded"
    finally:
        await runtime.close()


async def test_maintenance_ends_scans_whose_process_died(ctx: JobContext) -> None:
    """A `scans` row stays `running` if the bot dies mid-scan; no scan lasts two hours (a
    /24 at 30 s per host-timeout chunk is minutes), so an older one is recorded as ended."""
    from core.db.models import Scan
    from core.maintenance import SCAN_ABANDONED_AFTER

    now = utcnow()

    def row(started: timedelta, status: str = "running") -> Scan:
        return Scan(
            target="127.0.0.0/30",
            requested_by="U0A",
            status=status,
            addresses=4,
            hosts_up=0,
            changes={},
            started_at=now - started,
        )

    async with ctx.sessions() as session, session.begin():
        stale, fresh, done = (
            row(SCAN_ABANDONED_AFTER * 2),
            row(timedelta(minutes=1)),
            row(SCAN_ABANDONED_AFTER * 3, "done"),
        )
        session.add_all([stale, fresh, done])
    upkeep = await run_maintenance(ctx.sessions, RecordingExecutor(), now=now)
    assert upkeep.abandoned_scans == [stale.id]
    async with ctx.sessions() as session:
        states = {
            r.id: (r.status, r.error, r.finished_at is not None)
            for r in (await session.scalars(sa.select(Scan))).all()
        }
    assert states[stale.id] == ("failed", "interrupted: the process running it ended", True)
    assert states[fresh.id][0] == "running" and states[done.id][0] == "done"
    again = await run_maintenance(ctx.sessions, RecordingExecutor(), now=now)
    assert again.abandoned_scans == []
