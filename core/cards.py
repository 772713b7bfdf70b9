"""What a proposal message shows, gathered from the database in one place.

Chat surfaces (Slack's Block Kit, the console) render a `ProposalCard`; they never query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


async def load_cards(
    session: AsyncSession, proposal_ids: list[int], default_approvers: tuple[str, ...] = ()
) -> list[ProposalCard]:
    """Cards for these proposals, in the order given (missing ids are skipped)."""
    if not proposal_ids:
        return []
    rows = (
        await session.execute(
            sa.select(Proposal, Alert, Policy.description)
            .outerjoin(Alert, Alert.id == Proposal.alert_id)
            .outerjoin(Policy, Policy.id == Proposal.policy_id)
            .where(Proposal.id.in_(proposal_ids))
        )
    ).all()
    latest: dict[int, JobLog] = {}
    for job in (
        await session.scalars(
            sa.select(JobLog).where(JobLog.proposal_id.in_(proposal_ids)).order_by(JobLog.id)
        )
    ).all():
        latest[job.proposal_id] = job
    by_id: dict[int, ProposalCard] = {}
    for proposal, alert, description in rows:
        last_job = latest.get(proposal.id)
        spec = CATALOGUE.get(proposal.action)
        by_id[proposal.id] = ProposalCard(
            id=proposal.id,
            status=proposal.status,
            status_reason=proposal.status_reason,
            source=proposal.source,
            action=proposal.action,
            action_description=spec.description if spec else "",
            risk=proposal.risk,
            params=dict(proposal.params),
            target=proposal.target,
            policy_name=proposal.policy_name,
            policy_description=description or "",
            approval=proposal.approval,
            approvers=tuple(proposal.approvers or ()) or default_approvers,
            dry_run=proposal.dry_run,
            requested_by=proposal.requested_by,
            decided_by=proposal.decided_by,
            decided_at=proposal.decided_at,
            expires_at=proposal.expires_at,
            created_at=proposal.created_at,
            channel=proposal.slack_channel,
            message_ts=proposal.slack_ts,
            thread_ts=proposal.slack_thread_ts,
            alert=AlertInfo(
                alertname=alert.alertname,
                status=alert.status,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                generator_url=alert.generator_url,
                starts_at=alert.starts_at,
            )
            if alert is not None
            else None,
            last_result=last_job.output.splitlines()[0] if last_job and last_job.output else None,
            last_error=last_job.error if last_job else None,
            attempts=last_job.attempt if last_job else 0,
        )
    return [by_id[i] for i in proposal_ids if i in by_id]
