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

    @classmethod
    def of(cls, job: JobLog, action: str, target: str) -> JobRow:
        """A job_logs row with its proposal's action and target."""
        own = {
            f: getattr(job, f) for f in cls.__dataclass_fields__ if f not in ("action", "target")
        }
        return cls(**own, action=action, target=target)

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
    return [JobRow.of(job, action, target) for job, action, target in rows]
