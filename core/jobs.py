"""Reading job runs for people: `infraai jobs`, `/infraai jobs`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import JobLog, Proposal


@dataclass(frozen=True)
class JobRow:
    id: int
    proposal_id: int
    action: str
    target: str
    attempt: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    worker_name: str | None
    output: str | None
    error: str | None
    rq_job_id: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


async def list_jobs(session: AsyncSession, *, limit: int = 20) -> list[JobRow]:
    rows = (
        await session.execute(
            sa.select(JobLog, Proposal.action, Proposal.target)
            .join(Proposal, Proposal.id == JobLog.proposal_id)
            .order_by(JobLog.id.desc())
            .limit(max(1, min(limit, 500)))
        )
    ).all()
    return [
        JobRow(
            id=job.id,
            proposal_id=job.proposal_id,
            action=action,
            target=target,
            attempt=job.attempt,
            status=job.status,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration=job.duration,
            worker_name=job.worker_name,
            output=job.output,
            error=job.error,
            rq_job_id=job.rq_job_id,
        )
        for job, action, target in rows
    ]
