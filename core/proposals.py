"""Reading proposals for people: the CLI, `/infraai proposals`, the console."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Proposal


@dataclass(frozen=True)
class ProposalView:
    id: int
    source: str
    status: str
    status_reason: str | None
    policy_name: str | None
    action: str
    params: dict[str, Any]
    target: str
    risk: str
    approval: str
    dry_run: bool
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None
    alert_id: int | None

    @classmethod
    def of(cls, row: Proposal) -> ProposalView:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


async def list_proposals(
    session: AsyncSession, *, status: str | None = None, limit: int = 50
) -> list[ProposalView]:
    query = sa.select(Proposal).order_by(Proposal.id.desc()).limit(max(1, min(limit, 1000)))
    if status:
        query = query.where(Proposal.status == status)
    return [ProposalView.of(row) for row in (await session.scalars(query)).all()]
