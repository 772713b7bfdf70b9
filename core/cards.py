"""What a proposal message shows, gathered from the database in one place.

Chat surfaces (Slack's Block Kit, the console) render a `ProposalCard`; they never query.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.actions.catalogue import CATALOGUE
from core.db.models import Alert, JobLog, Policy, Proposal


@dataclass(frozen=True)
class AlertInfo:
    alertname: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    starts_at: datetime | None

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or ""

    @property
    def runbook_url(self) -> str | None:
        return self.annotations.get("runbook_url") or self.annotations.get("runbook")


@dataclass(frozen=True)
class ProposalCard:
    id: int
    status: str
    status_reason: str | None
    source: str
    action: str
    action_description: str
    risk: str
    params: dict[str, Any]
    target: str
    policy_name: str | None
    policy_description: str
    approval: str
    approvers: tuple[str, ...]
    dry_run: bool
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    channel: str | None
    message_ts: str | None
    thread_ts: str | None
    alert: AlertInfo | None = None
    last_result: str | None = None
    last_error: str | None = None
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    def as_announced(self, status: str) -> ProposalCard:
        """The card as it stood when `status` was announced (a surface that prints each
        change, such as the console, shows the states a job went through, not only the
        last). What belongs to a later state (its reason, its result) is left out."""
        if status == self.status:
            return self
        return replace(self, status=status, status_reason=None, last_result=None, last_error=None)


_PROPOSAL = Proposal.__table__
_ALERT = Alert.__table__
_JOB = JobLog.__table__


async def load_cards(
    session: AsyncSession, proposal_ids: list[int], default_approvers: tuple[str, ...] = ()
) -> list[ProposalCard]:
    """Cards for these proposals, in the order given (missing ids are skipped).

    Plain rows, not ORM objects: an alert storm's group message renders hundreds of cards
    in the bot's one event loop, and building mapped instances for them costs several
    times the query."""
    if not proposal_ids:
        return []
    p, a = _PROPOSAL.c, _ALERT.c
    rows = (
        await session.execute(
            sa.select(
                p.id,
                p.status,
                p.status_reason,
                p.source,
                p.action,
                p.risk,
                p.params,
                p.target,
                p.policy_name,
                p.approval,
                p.approvers,
                p.dry_run,
                p.requested_by,
                p.decided_by,
                p.decided_at,
                p.expires_at,
                p.created_at,
                p.slack_channel,
                p.slack_ts,
                p.slack_thread_ts,
                a.id.label("alert_id"),
                a.alertname,
                a.status.label("alert_status"),
                a.labels,
                a.annotations,
                a.generator_url,
                a.starts_at,
                Policy.description,
            )
            .select_from(_PROPOSAL)
            .outerjoin(_ALERT, a.id == p.alert_id)
            .outerjoin(Policy, Policy.id == p.policy_id)
            .where(p.id.in_(proposal_ids))
        )
    ).all()
    j = _JOB.c
    latest: dict[int, Any] = {}
    for job in (
        await session.execute(
            sa.select(j.proposal_id, j.output, j.error, j.attempt)
            .where(j.proposal_id.in_(proposal_ids))
            .order_by(j.id)
        )
    ).all():
        latest[job.proposal_id] = job
    by_id: dict[int, ProposalCard] = {}
    for row in rows:
        last_job = latest.get(row.id)
        spec = CATALOGUE.get(row.action)
        by_id[row.id] = ProposalCard(
            id=row.id,
            status=row.status,
            status_reason=row.status_reason,
            source=row.source,
            action=row.action,
            action_description=spec.description if spec else "",
            risk=row.risk,
            params=dict(row.params),
            target=row.target,
            policy_name=row.policy_name,
            policy_description=row.description or "",
            approval=row.approval,
            approvers=tuple(row.approvers or ()) or default_approvers,
            dry_run=row.dry_run,
            requested_by=row.requested_by,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            expires_at=row.expires_at,
            created_at=row.created_at,
            channel=row.slack_channel,
            message_ts=row.slack_ts,
            thread_ts=row.slack_thread_ts,
            alert=AlertInfo(
                alertname=row.alertname,
                status=row.alert_status,
                labels=dict(row.labels),
                annotations=dict(row.annotations),
                generator_url=row.generator_url,
                starts_at=row.starts_at,
            )
            if row.alert_id is not None
            else None,
            last_result=last_job.output.splitlines()[0] if last_job and last_job.output else None,
            last_error=last_job.error if last_job else None,
            attempts=last_job.attempt if last_job else 0,
        )
    return [by_id[i] for i in proposal_ids if i in by_id]
