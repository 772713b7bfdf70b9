"""The job function: run one approved proposal, once, and record everything.

The same coroutine runs in-process (the embedded default) and under RQ (`run_proposal_job`
drives it on the worker process's loop). approved → running is one conditional UPDATE, so
however many workers pick the job up, one runs it; every path ends in a recorded, visible
state: succeeded, failed (with the error), or — when the worker dies — failed "worker lost"
by the sweep that notices its heartbeat stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.actions.catalogue import get_action
from core.audit import record
from core.config import Settings
from core.db.models import JobLog, Policy, Proposal
from core.db.types import utcnow
from core.execution.actions import ActionFailed, ActionResult, Limits, run_action
from core.execution.integrations import Integrations
from core.outbox import announce_in_thread, announce_update

log = logging.getLogger(__name__)

OUTPUT_CAP = 64 * 1024
HEARTBEAT_SECONDS = 2.0
LOST_AFTER_SECONDS = 15.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


@dataclass
class JobContext:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    integrations: Integrations
    worker_name: str = field(default_factory=default_worker_name)
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    retry_backoff: tuple[float, ...] = (1.0, 2.0, 4.0)


def _cap(text: str) -> str:
    if len(text) <= OUTPUT_CAP:
        return text
    return text[: OUTPUT_CAP - 40] + f"\n… [{len(text) - OUTPUT_CAP + 40} characters cut]"


def _output(result: ActionResult) -> str:
    lines = [result.summary]
    if result.request:
        lines.append(("would send: " if result.dry_run else "sent: ") + result.request)
    if result.data is not None:
        lines.append(f"data: {result.data!r}")
    return _cap("\n".join(lines))


async def _heartbeat(ctx: JobContext, job_log_id: int) -> None:
    while True:
        await asyncio.sleep(ctx.heartbeat_seconds)
        try:
            async with ctx.sessions() as session, session.begin():
                await session.execute(
                    sa.update(JobLog).where(JobLog.id == job_log_id).values(heartbeat_at=utcnow())
                )
        except Exception as exc:  # a missed beat is not a failure of the job
            log.warning("heartbeat for job log %s failed: %s", job_log_id, exc)


async def _start(
    ctx: JobContext, proposal_id: int, rq_job_id: str | None
) -> tuple[Proposal, int] | str:
    now = utcnow()
    async with ctx.sessions() as session, session.begin():
        claimed = (
            await session.execute(
                sa.update(Proposal)
                .where(Proposal.id == proposal_id, Proposal.status == "approved")
                .values(status="running", updated_at=now)
                .returning(Proposal.id)
            )
        ).scalar_one_or_none()
        if claimed is None:
            status = await session.scalar(
                sa.select(Proposal.status).where(Proposal.id == proposal_id)
            )
            return f"proposal {proposal_id} is {status or 'gone'}: nothing to run"
        proposal = await session.get(Proposal, proposal_id, populate_existing=True)
        assert proposal is not None
        job_log = JobLog(
            proposal_id=proposal_id,
            rq_job_id=rq_job_id,
            attempt=1,
            status="running",
            started_at=now,
            heartbeat_at=now,
            worker_name=ctx.worker_name,
        )
        session.add(job_log)
        await session.flush()
        record(
            session,
            ctx.worker_name,
            "execution.started",
            f"proposal/{proposal_id}",
            action=proposal.action,
            dry_run=proposal.dry_run or ctx.settings.infraai_dry_run,
            job_log=job_log.id,
        )
        announce_update(session, proposal_id, proposal.slack_channel, reason="running")
        return proposal, job_log.id


async def _limits(ctx: JobContext, proposal: Proposal) -> Limits:
    allow_zero = False
    if proposal.policy_id is not None:
        async with ctx.sessions() as session:
            allow_zero = bool(
                await session.scalar(
                    sa.select(Policy.allow_scale_to_zero).where(Policy.id == proposal.policy_id)
                )
            )
    return Limits(max_replicas=ctx.settings.infraai_max_replicas, allow_scale_to_zero=allow_zero)


async def _attempt(
    ctx: JobContext, proposal: Proposal, limits: Limits
) -> tuple[ActionResult | None, str | None, bool]:
    """One try: (result, error, transient)."""
    spec = get_action(proposal.action)
    try:
        params = spec.validate(proposal.params)
    except ValueError as exc:
        return None, f"params no longer valid for {proposal.action}: {exc}", False
    timeout = ctx.settings.infraai_action_timeout_seconds
    try:
        result = await asyncio.wait_for(
            asyncio.to_thread(
                run_action,
                ctx.integrations,
                proposal.action,
                params,
                dry_run=proposal.dry_run or ctx.settings.infraai_dry_run,
                limits=limits,
            ),
            timeout,
        )
    except ActionFailed as exc:
        return None, str(exc), exc.transient
    except TimeoutError:
        # The thread cannot be stopped: the abandoned call goes on. Trying a write again
        # would run it a second time, alongside the first.
        if spec.risk == "read":
            return None, f"timed out after {timeout:g} s", True
        return (
            None,
            f"timed out after {timeout:g} s; the action may still complete: "
            "check the target before trying again",
            False,
        )
    except Exception as exc:
        log.exception("action %s for proposal %s crashed", proposal.action, proposal.id)
        return None, f"internal error: {type(exc).__name__}: {exc}", False
    return result, None, False


async def _finish_attempt(
    ctx: JobContext,
    proposal: Proposal,
    job_log_id: int,
    started: float,
    result: ActionResult | None,
    error: str | None,
    final: bool,
) -> int | None:
    """Close this attempt's job log; when final, close the proposal. Returns the next log id."""
    now = utcnow()
    status = "succeeded" if result is not None else "failed"
    duration = time.monotonic() - started
    async with ctx.sessions() as session, session.begin():
        job_log = await session.get(JobLog, job_log_id)
        assert job_log is not None
        if job_log.status != "running":
            # The lost-job sweep gave up on this worker (its heartbeats did not land) while
            # the action went on: record what really happened, and start no further attempt.
            final = True
        job_log.status, job_log.finished_at, job_log.duration = status, now, duration
        job_log.output = _output(result) if result is not None else None
        job_log.error = error
        subject = f"proposal/{proposal.id}"
        if not final:
            nxt = JobLog(
                proposal_id=proposal.id,
                rq_job_id=job_log.rq_job_id,
                attempt=job_log.attempt + 1,
                status="running",
                started_at=now,
                heartbeat_at=now,
                worker_name=ctx.worker_name,
            )
            session.add(nxt)
            await session.flush()
            record(
                session,
                ctx.worker_name,
                "execution.retry",
                subject,
                error=error,
                attempt=job_log.attempt,
            )
            return nxt.id
        # "failed" too: only the lost-job sweep fails a running proposal, and only this job
        # knows how the action ended.
        await session.execute(
            sa.update(Proposal)
            .where(Proposal.id == proposal.id, Proposal.status.in_(("running", "failed")))
            .values(status=status, status_reason=error if error else None, updated_at=now)
        )
        if result is not None:
            record(
                session,
                ctx.worker_name,
                "execution.succeeded",
                subject,
                summary=result.summary,
                request=result.request,
                dry_run=result.dry_run,
                duration=round(duration, 3),
            )
            icon = "🧪 Dry run" if result.dry_run else "✅ Succeeded"
            text = f"{icon} in {duration:.1f} s: {result.summary}"
            if result.request:
                label = "would send" if result.dry_run else "sent"
                text += f"\n{label}: `{result.request}`"
        else:
            record(
                session,
                ctx.worker_name,
                "execution.failed",
                subject,
                error=error,
                attempts=job_log.attempt,
            )
            text = f"❌ Failed after {job_log.attempt} attempt(s): {error}"
        announce_in_thread(session, proposal.id, proposal.slack_channel, text, status=status)
        announce_update(session, proposal.id, proposal.slack_channel, reason=status)
    return None


async def execute_proposal(ctx: JobContext, proposal_id: int, rq_job_id: str | None = None) -> str:
    """Run an approved proposal; returns a one-line account (RQ keeps it as the result)."""
    started = await _start(ctx, proposal_id, rq_job_id)
    if isinstance(started, str):
        log.info(started)
        return started
    proposal, job_log_id = started
    limits = await _limits(ctx, proposal)
    attempts = ctx.settings.infraai_job_attempts
    for attempt in range(1, attempts + 1):
        began = time.monotonic()
        beat = asyncio.create_task(_heartbeat(ctx, job_log_id))
        try:
            result, error, transient = await _attempt(ctx, proposal, limits)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        final = result is not None or not transient or attempt == attempts
        next_log = await _finish_attempt(ctx, proposal, job_log_id, began, result, error, final)
        if next_log is None:
            return result.summary if result is not None else f"failed: {error}"
        job_log_id = next_log
        backoff = ctx.retry_backoff[min(attempt - 1, len(ctx.retry_backoff) - 1)]
        await asyncio.sleep(backoff)
    raise AssertionError("unreachable")


async def sweep_lost_jobs(
    sessions: async_sessionmaker[AsyncSession],
    *,
    lost_after: timedelta = timedelta(seconds=LOST_AFTER_SECONDS),
    now: datetime | None = None,
) -> list[int]:
    """Record as failed ("worker lost") every running job whose heartbeat stopped."""
    now = now or utcnow()
    cutoff = now - lost_after
    lost: list[int] = []
    async with sessions() as session, session.begin():
        stale = (
            await session.execute(
                sa.select(JobLog.id, JobLog.proposal_id, JobLog.worker_name, JobLog.heartbeat_at)
                .join(Proposal, Proposal.id == JobLog.proposal_id)
                .where(
                    JobLog.status == "running",
                    Proposal.status == "running",
                    sa.or_(JobLog.heartbeat_at < cutoff, JobLog.heartbeat_at.is_(None)),
                )
            )
        ).all()
        for job in stale:
            reason = (
                f"worker lost: {job.worker_name or 'a worker'} stopped answering "
                f"(last heartbeat {job.heartbeat_at:%H:%M:%S}Z)"
                if job.heartbeat_at
                else "worker lost"
            )
            closed = (
                await session.execute(
                    sa.update(Proposal)
                    .where(Proposal.id == job.proposal_id, Proposal.status == "running")
                    .values(status="failed", status_reason=reason, updated_at=now)
                    .returning(Proposal.slack_channel)
                )
            ).first()
            await session.execute(
                sa.update(JobLog)
                .where(JobLog.id == job.id, JobLog.status == "running")
                .values(status="failed", finished_at=now, error=reason)
            )
            if closed is None:
                continue
            lost.append(job.proposal_id)
            record(
                session, "sweeper", "execution.lost", f"proposal/{job.proposal_id}", reason=reason
            )
            announce_in_thread(
                session,
                job.proposal_id,
                closed.slack_channel,
                f"💀 Failed: {reason}. The action may or may not have run; "
                "check the target before trying again.",
                status="failed",
            )
            announce_update(session, job.proposal_id, closed.slack_channel, reason="failed")
    return lost
