"""The job function: run one approved proposal, once, and record everything.

The same coroutine runs in-process (the embedded default) and under RQ (`run_proposal_job`
drives it on the worker process's loop). approved → running is one conditional UPDATE, so
however many workers pick the job up, one runs it; every path ends in a recorded, visible
state: succeeded, failed (with the error), or — when the worker dies — failed "worker lost"
by the sweep that notices its heartbeat stopped.

Cost (bench/worker.py measures it against bare RQ jobs). A job is two short transactions
around the action — the claim and the finish — plus one per retry and one per heartbeat.
They are written as SQLAlchemy Core statements built once at import (compiled once, prepared
once per connection by asyncpg) on a connection of the engine, with no ORM session,
objects, identity map or flush. On PostgreSQL the claim and the finish of a last attempt are
each ONE statement — the writes that belong together are data-modifying CTEs of it — run in
autocommit mode: one statement is one transaction, and costs one round trip (no BEGIN, no
COMMIT). SQLite has no DML in CTEs and runs the same writes one statement after another in
one transaction; both paths write the same rows under the same conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from core.actions.catalogue import get_action
from core.audit import audit_row, record
from core.config import Settings
from core.db.models import AuditEvent, ChatMessage, JobLog, Notification, Policy, Proposal
from core.db.types import utcnow
from core.execution.actions import ActionFailed, ActionResult, Limits, run_action
from core.execution.integrations import Integrations
from core.outbox import announce_in_thread, announce_update, thread_row, update_row

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


# ---------------------------------------------------------------- statements

PROPOSALS = cast(sa.Table, Proposal.__table__)
CHAT_MESSAGES = cast(sa.Table, ChatMessage.__table__)
POLICIES = cast(sa.Table, Policy.__table__)
JOB_LOGS = cast(sa.Table, JobLog.__table__)
AUDIT_EVENTS = cast(sa.Table, AuditEvent.__table__)
NOTIFICATIONS = cast(sa.Table, Notification.__table__)
AUDIT_COLUMNS = ("at", "actor", "verb", "subject", "detail")
LOG_COLUMNS = (
    "proposal_id",
    "rq_job_id",
    "attempt",
    "status",
    "started_at",
    "heartbeat_at",
    "worker_name",
)
NOTIFICATION_COLUMNS = ("kind", "proposal_id", "channel", "payload", "attempts", "created_at")


# Parameter names are never column names: given a parameter named after a column it does not
# set, a Core UPDATE or INSERT would set that column too.
_COLUMN_NAMES = frozenset(
    column.key for table in (PROPOSALS, JOB_LOGS, AUDIT_EVENTS, NOTIFICATIONS) for column in table.c
)


def _param(column: sa.Column[Any], name: str) -> sa.BindParameter[Any]:
    """A bound parameter typed as `column`, so a value converts the same wherever it goes."""
    assert name not in _COLUMN_NAMES, name
    return sa.bindparam(name, type_=column.type)


def _prefixed(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row dict (`audit_row`, `update_row`, …) as the parameters of a `_row_values` row."""
    return {prefix + name: value for name, value in row.items()}


def _row_values(table: sa.Table, columns: tuple[str, ...], prefix: str) -> dict[str, Any]:
    return {name: _param(table.c[name], prefix + name) for name in columns}


_NOW = _param(JOB_LOGS.c.started_at, "now")

# approved → running: the claim. Only the statement that changes the row claims it, so of
# any number of concurrent workers exactly one gets a row back.
_CLAIM = (
    sa.update(PROPOSALS)
    .where(PROPOSALS.c.id == _param(PROPOSALS.c.id, "proposal"))
    .where(PROPOSALS.c.status == "approved")
    .values(status="running", updated_at=_NOW)
)
# What the job reads of the proposal, returned by the claim itself; with the policy's
# allow_scale_to_zero (NULL, so not allowed, without a policy).
_CLAIMED = (
    PROPOSALS.c.action,
    PROPOSALS.c.params,
    PROPOSALS.c.dry_run,
    PROPOSALS.c.slack_channel,
)
_CLAIM_RETURNING = _CLAIM.returning(
    *_CLAIMED,
    sa.select(POLICIES.c.allow_scale_to_zero)
    .where(POLICIES.c.id == PROPOSALS.c.policy_id)
    .correlate(PROPOSALS)
    .scalar_subquery()
    .label("allow_scale_to_zero"),
)
_STATUS = sa.select(PROPOSALS.c.status).where(PROPOSALS.c.id == _param(PROPOSALS.c.id, "proposal"))

# One attempt's job log, opened running (the claim opens attempt 1, a retry the next one).
_OPEN_LOG = (
    sa.insert(JOB_LOGS)
    .values(
        proposal_id=_param(JOB_LOGS.c.proposal_id, "proposal"),
        rq_job_id=_param(JOB_LOGS.c.rq_job_id, "rq_job"),
        attempt=_param(JOB_LOGS.c.attempt, "attempt_no"),
        status="running",
        started_at=_NOW,
        heartbeat_at=_NOW,
        worker_name=_param(JOB_LOGS.c.worker_name, "worker"),
    )
    .returning(JOB_LOGS.c.id)
)
_BEAT = (
    sa.update(JOB_LOGS)
    .where(JOB_LOGS.c.id == _param(JOB_LOGS.c.id, "job_log"))
    .values(heartbeat_at=_NOW)
)
_AUDIT = sa.insert(AUDIT_EVENTS).values(_row_values(AUDIT_EVENTS, AUDIT_COLUMNS, "audit_"))
_NOTIFY = sa.insert(NOTIFICATIONS).values(
    _row_values(NOTIFICATIONS, NOTIFICATION_COLUMNS, "note0_")
)

# The finish. The attempt's log gets its outcome unconditionally: a log the lost-job sweep
# failed still records what really happened.
_CLOSE_LOG = (
    sa.update(JOB_LOGS)
    .where(JOB_LOGS.c.id == _param(JOB_LOGS.c.id, "job_log"))
    .values(
        status=_param(JOB_LOGS.c.status, "outcome"),
        finished_at=_NOW,
        duration=_param(JOB_LOGS.c.duration, "seconds"),
        output=_param(JOB_LOGS.c.output, "log_output"),
        error=_param(JOB_LOGS.c.error, "log_error"),
    )
)
# Before a retry: only a log still running (the sweep has not given up on this worker).
_CLOSE_RUNNING_LOG = _CLOSE_LOG.where(JOB_LOGS.c.status == "running").returning(JOB_LOGS.c.id)
# "failed" too: only the lost-job sweep fails a running proposal, and only this job knows
# how the action ended.
_CLOSE_PROPOSAL = (
    sa.update(PROPOSALS)
    .where(PROPOSALS.c.id == _param(PROPOSALS.c.id, "proposal"))
    .where(sa.or_(PROPOSALS.c.status == "running", PROPOSALS.c.status == "failed"))
    .values(
        status=_param(PROPOSALS.c.status, "outcome"),
        status_reason=_param(PROPOSALS.c.status_reason, "reason"),
        updated_at=_NOW,
    )
)
# The result in the thread (row 0), then the proposal's message re-rendered (row 1). As
# INSERT … SELECT … UNION ALL SELECT …: SQLAlchemy compiles a multi-row VALUES afresh at
# every execution (it does not cache it).
_NOTIFY_TWO = sa.insert(NOTIFICATIONS).from_select(
    list(NOTIFICATION_COLUMNS),
    sa.union_all(
        *(
            sa.select(*_row_values(NOTIFICATIONS, NOTIFICATION_COLUMNS, f"note{i}_").values())
            for i in range(2)
        )
    ),
)
# A chat proposal's result joins the conversation that asked for it (a follow-up question
# sees it); nothing for a proposal without one.
_REMEMBER = sa.insert(CHAT_MESSAGES).from_select(
    ["conversation", "role", "content", "created_at"],
    sa.select(
        PROPOSALS.c.conversation,
        sa.literal("assistant", sa.String),
        _param(CHAT_MESSAGES.c.content, "result_text"),
        _NOW,
    ).where(
        PROPOSALS.c.id == _param(PROPOSALS.c.id, "proposal"),
        PROPOSALS.c.conversation.is_not(None),
    ),
)
# SQLite: the finish of a last attempt, one statement after another, all with one set of
# parameters.
_FINISH_STEPS = (_CLOSE_LOG, _CLOSE_PROPOSAL, _AUDIT, _REMEMBER, _NOTIFY_TWO)


def _pg_claim() -> sa.Select[Any]:
    """PostgreSQL: the claim and everything it writes as one statement.

        WITH claimed AS (UPDATE proposals SET status = 'running', updated_at = :now
                         WHERE id = :proposal AND status = 'approved' RETURNING …),
             opened AS (INSERT INTO job_logs … SELECT … FROM claimed RETURNING id),
             started AS (INSERT INTO audit_events … SELECT … FROM claimed, opened),
             announced AS (INSERT INTO notifications … SELECT … FROM claimed)
        SELECT claimed.…, opened.id, (SELECT allow_scale_to_zero FROM policies …)
        FROM claimed, opened

    Every INSERT selects from `claimed`, so when the claim changes no row (another worker
    has it, or it is no longer approved) the statement writes nothing and returns no row.
    """
    claimed = _CLAIM.returning(PROPOSALS.c.id, *_CLAIMED, PROPOSALS.c.policy_id).cte("claimed")
    worker = _param(JOB_LOGS.c.worker_name, "worker")
    opened = (
        sa.insert(JOB_LOGS)
        .from_select(
            list(LOG_COLUMNS),
            sa.select(
                claimed.c.id,
                _param(JOB_LOGS.c.rq_job_id, "rq_job"),
                sa.literal(1, sa.Integer),
                sa.literal("running", sa.String),
                _NOW,
                _NOW,
                worker,
            ),
        )
        .returning(JOB_LOGS.c.id)
        .cte("opened")
    )
    both = claimed.join(opened, sa.true())
    # The same detail as `audit_row(…, action=…, dry_run=…, job_log=…)` on SQLite.
    detail = sa.func.jsonb_build_object(
        sa.literal_column("'action'"),
        claimed.c.action,
        sa.literal_column("'dry_run'"),
        sa.or_(claimed.c.dry_run, sa.bindparam("shadow", type_=sa.Boolean)),
        sa.literal_column("'job_log'"),
        opened.c.id,
    )
    started = (
        sa.insert(AUDIT_EVENTS)
        .from_select(
            list(AUDIT_COLUMNS),
            sa.select(
                _NOW,
                worker,
                sa.literal("execution.started", sa.String),
                _param(AUDIT_EVENTS.c.subject, "audit_subject"),
                detail,
            ).select_from(both),
        )
        .cte("started")
    )
    # The `update_row` of SQLite's path, its proposal and channel those of the claimed row.
    announced = (
        sa.insert(NOTIFICATIONS)
        .from_select(
            list(NOTIFICATION_COLUMNS),
            sa.select(
                _param(NOTIFICATIONS.c.kind, "note0_kind"),
                claimed.c.id,
                claimed.c.slack_channel,
                _param(NOTIFICATIONS.c.payload, "note0_payload"),
                _param(NOTIFICATIONS.c.attempts, "note0_attempts"),
                _param(NOTIFICATIONS.c.created_at, "note0_created_at"),
            ),
        )
        .cte("announced")
    )
    allow_zero = (
        sa.select(POLICIES.c.allow_scale_to_zero)
        .where(POLICIES.c.id == claimed.c.policy_id)
        .scalar_subquery()
    )
    return (
        sa.select(
            *(claimed.c[column.name] for column in _CLAIMED),
            allow_zero.label("allow_scale_to_zero"),
            opened.c.id.label("job_log_id"),
        )
        .select_from(both)
        .add_cte(started, announced)
    )


def _pg_finish() -> sa.Insert:
    """PostgreSQL: `_FINISH_STEPS` as one statement — the first four as CTEs of the last.

        WITH close_log AS (UPDATE job_logs SET status = :outcome, … WHERE id = :job_log),
             close_proposal AS (UPDATE proposals SET status = :outcome, …
                                WHERE id = :proposal AND status IN ('running', 'failed')),
             audit AS (INSERT INTO audit_events … VALUES (…)),
             remember AS (INSERT INTO chat_messages … SELECT … FROM proposals
                          WHERE id = :proposal AND conversation IS NOT NULL)
        INSERT INTO notifications … SELECT …thread… UNION ALL SELECT …update…

    The steps are independent (no one reads what another writes), so running them in one
    snapshot changes nothing.
    """
    close_log, close_proposal, audit, remember, notify = _FINISH_STEPS
    return notify.add_cte(
        close_log.cte("close_log"),
        close_proposal.cte("close_proposal"),
        audit.cte("audit"),
        remember.cte("remember"),
    )


_PG_CLAIM = _pg_claim()
_PG_FINISH = _pg_finish()


@contextlib.asynccontextmanager
async def _transaction(
    ctx: JobContext, *, one_statement_on_pg: bool = False
) -> AsyncIterator[AsyncConnection]:
    """One transaction on a connection of the context's engine, committed on exit.

    A Core connection straight from the engine the sessions are bound to: these statements
    need nothing of an ORM session. `one_statement_on_pg`: on PostgreSQL the caller's writes
    are one statement — a transaction by itself — so it runs in autocommit mode, without
    the round trips of BEGIN and COMMIT.
    """
    engine = ctx.sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine):  # not bound to one engine: through a session
        async with ctx.sessions() as session, session.begin():
            yield await session.connection()
        return
    if one_statement_on_pg and engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")
        return
    async with engine.begin() as connection:
        yield connection


def _is_pg(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


# ---------------------------------------------------------------- the job


@dataclass(frozen=True)
class _Claim:
    """The claimed proposal: what the job needs of it, read by the claim itself."""

    proposal_id: int
    rq_job_id: str | None
    action: str
    params: dict[str, Any]
    dry_run: bool  # the proposal's, or the worker's shadow mode
    channel: str | None
    allow_scale_to_zero: bool

    @property
    def subject(self) -> str:
        return f"proposal/{self.proposal_id}"


async def _heartbeat(ctx: JobContext, job_log_id: int) -> None:
    while True:
        await asyncio.sleep(ctx.heartbeat_seconds)
        try:
            async with _transaction(ctx, one_statement_on_pg=True) as connection:
                await connection.execute(_BEAT, {"job_log": job_log_id, "now": utcnow()})
        except Exception as exc:  # a missed beat is not a failure of the job
            log.warning("heartbeat for job log %s failed: %s", job_log_id, exc)


async def _start(
    ctx: JobContext, proposal_id: int, rq_job_id: str | None
) -> tuple[_Claim, int] | str:
    """Claim the proposal (approved → running) and open attempt 1's job log; or say why not."""
    now = utcnow()
    shadow = ctx.settings.infraai_dry_run
    params: dict[str, Any] = {
        "proposal": proposal_id,
        "rq_job": rq_job_id,
        "attempt_no": 1,
        "now": now,
        "worker": ctx.worker_name,
    }
    async with _transaction(ctx, one_statement_on_pg=True) as connection:
        if _is_pg(connection):
            params.update(
                shadow=shadow,
                audit_subject=f"proposal/{proposal_id}",
                **_prefixed("note0_", update_row(proposal_id, None, reason="running")),
            )
            row = (await connection.execute(_PG_CLAIM, params)).first()
            job_log_id = None if row is None else int(row.job_log_id)
        else:
            row = (await connection.execute(_CLAIM_RETURNING, params)).first()
            job_log_id = None
            if row is not None:
                job_log_id = (await connection.execute(_OPEN_LOG, params)).scalar_one()
                started = audit_row(
                    ctx.worker_name,
                    "execution.started",
                    f"proposal/{proposal_id}",
                    action=row.action,
                    dry_run=row.dry_run or shadow,
                    job_log=job_log_id,
                )
                await connection.execute(_AUDIT, _prefixed("audit_", started))
                note = update_row(proposal_id, row.slack_channel, reason="running")
                await connection.execute(_NOTIFY, _prefixed("note0_", note))
        if row is None or job_log_id is None:
            # Not approved (any more), or another worker claimed it first. A statement of
            # its own, as in a transaction at READ COMMITTED: it sees the claim that won.
            status = await connection.scalar(_STATUS, {"proposal": proposal_id})
            return f"proposal {proposal_id} is {status or 'gone'}: nothing to run"
    claim = _Claim(
        proposal_id=proposal_id,
        rq_job_id=rq_job_id,
        action=row.action,
        params=row.params,
        dry_run=bool(row.dry_run) or shadow,
        channel=row.slack_channel,
        allow_scale_to_zero=bool(row.allow_scale_to_zero),
    )
    return claim, job_log_id


def _limits(ctx: JobContext, claim: _Claim) -> Limits:
    return Limits(
        max_replicas=ctx.settings.infraai_max_replicas,
        allow_scale_to_zero=claim.allow_scale_to_zero,
    )


async def _attempt(
    ctx: JobContext, claim: _Claim, limits: Limits
) -> tuple[ActionResult | None, str | None, bool]:
    """One try: (result, error, transient)."""
    spec = get_action(claim.action)
    try:
        params = spec.validate(claim.params)
    except ValueError as exc:
        return None, f"params no longer valid for {claim.action}: {exc}", False
    timeout = ctx.settings.infraai_action_timeout_seconds
    try:
        result = await asyncio.wait_for(
            ctx.integrations.run(
                run_action,
                ctx.integrations,
                claim.action,
                params,
                dry_run=claim.dry_run,
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
        log.exception("action %s for proposal %s crashed", claim.action, claim.proposal_id)
        return None, f"internal error: {type(exc).__name__}: {exc}", False
    return result, None, False


async def _finish_attempt(
    ctx: JobContext,
    claim: _Claim,
    job_log_id: int,
    attempt: int,
    started: float,
    result: ActionResult | None,
    error: str | None,
    final: bool,
) -> int | None:
    """Close this attempt's job log; when final, close the proposal. Returns the next log id."""
    now = utcnow()
    status = "succeeded" if result is not None else "failed"
    duration = time.monotonic() - started
    params: dict[str, Any] = {
        "job_log": job_log_id,
        "proposal": claim.proposal_id,
        "outcome": status,
        "now": now,
        "seconds": duration,
        "log_output": _output(result) if result is not None else None,
        "log_error": error,
        "reason": error if error else None,
    }
    async with _transaction(ctx, one_statement_on_pg=final) as connection:
        if not final:
            closed = (await connection.execute(_CLOSE_RUNNING_LOG, params)).first()
            if closed is not None:
                next_log: int = (
                    await connection.execute(
                        _OPEN_LOG,
                        {
                            "proposal": claim.proposal_id,
                            "rq_job": claim.rq_job_id,
                            "attempt_no": attempt + 1,
                            "now": now,
                            "worker": ctx.worker_name,
                        },
                    )
                ).scalar_one()
                retry = audit_row(
                    ctx.worker_name, "execution.retry", claim.subject, error=error, attempt=attempt
                )
                await connection.execute(_AUDIT, _prefixed("audit_", retry))
                return next_log
            # The lost-job sweep gave up on this worker (its heartbeats did not land) while
            # the action went on: record what really happened, and start no further attempt.
        if result is not None:
            outcome = audit_row(
                ctx.worker_name,
                "execution.succeeded",
                claim.subject,
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
            outcome = audit_row(
                ctx.worker_name, "execution.failed", claim.subject, error=error, attempts=attempt
            )
            text = f"❌ Failed after {attempt} attempt(s): {error}"
        # The result in the thread, then the proposal's message re-rendered.
        params["result_text"] = f"Job for proposal #{claim.proposal_id} ({claim.action}): {text}"
        params |= _prefixed("audit_", outcome)
        params |= _prefixed(
            "note0_", thread_row(claim.proposal_id, claim.channel, text, status=status)
        )
        params |= _prefixed("note1_", update_row(claim.proposal_id, claim.channel, reason=status))
        if _is_pg(connection):
            await connection.execute(_PG_FINISH, params)
        else:
            for step in _FINISH_STEPS:
                await connection.execute(step, params)
    return None


async def execute_proposal(ctx: JobContext, proposal_id: int, rq_job_id: str | None = None) -> str:
    """Run an approved proposal; returns a one-line account (RQ keeps it as the result)."""
    started = await _start(ctx, proposal_id, rq_job_id)
    if isinstance(started, str):
        log.info(started)
        return started
    claim, job_log_id = started
    limits = _limits(ctx, claim)
    attempts = ctx.settings.infraai_job_attempts
    for attempt in range(1, attempts + 1):
        began = time.monotonic()
        beat = asyncio.create_task(_heartbeat(ctx, job_log_id))
        try:
            result, error, transient = await _attempt(ctx, claim, limits)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        final = result is not None or not transient or attempt == attempts
        next_log = await _finish_attempt(
            ctx, claim, job_log_id, attempt, began, result, error, final
        )
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
