"""Periodic upkeep run by the bot: nothing may stay in a state no one will ever leave.

- pending proposals past their expiry become `expired` (and their messages say so);
- running jobs whose worker stopped beating become `failed` ("worker lost");
- approved proposals that never reached the queue (Redis was down at the click) are queued;
- discovery scans left `running` by a process that died mid-scan are recorded as ended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.approvals import expire
from core.db.models import JobLog, Proposal, Scan
from core.db.types import utcnow
from core.execution.executor import Executor
from core.execution.job import LOST_AFTER_SECONDS, sweep_lost_jobs

log = logging.getLogger(__name__)

ORPHAN_AFTER = timedelta(seconds=30)
# No scan runs this long (a /24 is 16 nmap runs of at most 30 s a host): a `running` row
# older than this lost its process. Generous, so another replica's scan is never ended.
SCAN_ABANDONED_AFTER = timedelta(hours=2)


@dataclass
class Upkeep:
    expired: list[int]
    lost: list[int]
    requeued: list[int]
    abandoned_scans: list[int] = field(default_factory=list)


async def run_maintenance(
    sessions: async_sessionmaker[AsyncSession],
    executor: Executor,
    *,
    now: datetime | None = None,
    lost_after: timedelta = timedelta(seconds=LOST_AFTER_SECONDS),
) -> Upkeep:
    now = now or utcnow()
    async with sessions() as session, session.begin():
        due = list(
            (
                await session.scalars(
                    sa.select(Proposal.id).where(
                        Proposal.status == "pending", Proposal.expires_at <= now
                    )
                )
            ).all()
        )
        expired = await expire(session, due, now) if due else []
    lost = await sweep_lost_jobs(sessions, lost_after=lost_after, now=now)
    async with sessions() as session:
        orphans = list(
            (
                await session.scalars(
                    sa.select(Proposal.id).where(
                        Proposal.status == "approved",
                        Proposal.decided_at < now - ORPHAN_AFTER,
                        ~sa.exists().where(JobLog.proposal_id == Proposal.id),
                    )
                )
            ).all()
        )
    requeued = []
    for proposal_id in orphans:
        try:
            await executor.enqueue(proposal_id)
            requeued.append(proposal_id)
        except Exception as exc:
            log.warning("requeue of proposal %s failed: %s", proposal_id, exc)
            break
    async with sessions() as session, session.begin():
        abandoned = list(
            (
                await session.scalars(
                    sa.update(Scan)
                    .where(Scan.status == "running", Scan.started_at < now - SCAN_ABANDONED_AFTER)
                    .values(
                        status="failed",
                        error="interrupted: the process running it ended",
                        finished_at=now,
                    )
                    .returning(Scan.id)
                )
            ).all()
        )
    return Upkeep(expired, lost, requeued, abandoned)
