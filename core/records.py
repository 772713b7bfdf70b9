"""Reading the record in pages: alerts, proposals, jobs, a proposal's whole timeline, scans.

For the HTTP API (dashboards, scripts, incident reviews): newest first, keyset pagination
on the id (a page never shifts when rows are added meanwhile, and every page is one indexed
range scan however deep), filtered by status and time. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Alert, AuditEvent, JobLog, Proposal, Scan
from core.jobs import JobRow
from core.proposals import ProposalView

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_before: int | None  # the id to continue below; None: this was the last page


@dataclass(frozen=True)
class AlertView:
    id: int
    fingerprint: str
    alertname: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str | None
    first_seen: datetime
    last_seen: datetime
    times_received: int

    @classmethod
    def of(cls, row: Alert) -> AlertView:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    verb: str
    subject: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditEvent) -> AuditView:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Timeline:
    """One proposal from the alert that opened it to the last word of its job."""

    proposal: ProposalView
    alert: AlertView | None
    jobs: list[JobRow]
    audit: list[AuditView]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paged(rows: list[Any], limit: int) -> tuple[list[Any], int | None]:
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def _window(query: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


async def page_proposals(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
    policy: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[ProposalView]:
    query = sa.select(Proposal).order_by(Proposal.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Proposal.id < before)
    if status:
        query = query.where(Proposal.status == status)
    if policy:
        query = query.where(Proposal.policy_name == policy)
    query = _window(query, Proposal.created_at, since, until)
    rows, after = _paged(list((await session.scalars(query)).all()), limit)
    return Page([ProposalView.of(r) for r in rows], after)


async def page_alerts(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
    alertname: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AlertView]:
    """Alerts by when they were last received (`since`/`until` bound `last_seen`)."""
    query = sa.select(Alert).order_by(Alert.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Alert.id < before)
    if status:
        query = query.where(Alert.status == status)
    if alertname:
        query = query.where(Alert.alertname == alertname)
    query = _window(query, Alert.last_seen, since, until)
    rows, after = _paged(list((await session.scalars(query)).all()), limit)
    return Page([AlertView.of(r) for r in rows], after)


async def get_alert(session: AsyncSession, alert_id: int) -> AlertView | None:
    row = await session.get(Alert, alert_id)
    return AlertView.of(row) if row is not None else None


def _job_row(job: JobLog, action: str, target: str) -> JobRow:
    return JobRow(
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


async def page_jobs(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
    proposal_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[JobRow]:
    """Job runs (`since`/`until` bound when they started)."""
    query = (
        sa.select(JobLog, Proposal.action, Proposal.target)
        .join(Proposal, Proposal.id == JobLog.proposal_id)
        .order_by(JobLog.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(JobLog.id < before)
    if status:
        query = query.where(JobLog.status == status)
    if proposal_id is not None:
        query = query.where(JobLog.proposal_id == proposal_id)
    query = _window(query, JobLog.started_at, since, until)
    rows = list((await session.execute(query)).all())
    after = rows[limit - 1][0].id if len(rows) > limit else None
    return Page([_job_row(job, a, t) for job, a, t in rows[:limit]], after)


async def proposal_timeline(session: AsyncSession, proposal_id: int) -> Timeline | None:
    """The proposal, its alert, every attempt of its job and its audit trail, in order."""
    row = await session.get(Proposal, proposal_id)
    if row is None:
        return None
    alert = await session.get(Alert, row.alert_id) if row.alert_id is not None else None
    jobs = (
        await session.scalars(
            sa.select(JobLog).where(JobLog.proposal_id == proposal_id).order_by(JobLog.id)
        )
    ).all()
    audit = (
        await session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject == f"proposal/{proposal_id}")
            .order_by(AuditEvent.id)
            .limit(1000)
        )
    ).all()
    return Timeline(
        ProposalView.of(row),
        AlertView.of(alert) if alert is not None else None,
        [_job_row(job, row.action, row.target) for job in jobs],
        [AuditView.of(event) for event in audit],
    )


@dataclass(frozen=True)
class ScanView:
    id: int
    target: str
    ports: str | None
    requested_by: str
    status: str
    addresses: int
    hosts_up: int
    changes: dict[str, Any]
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Scan) -> ScanView:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


async def page_scans(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[ScanView]:
    """Discovery scans, newest first (`since`/`until` bound when they started)."""
    query = sa.select(Scan).order_by(Scan.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Scan.id < before)
    if status:
        query = query.where(Scan.status == status)
    query = _window(query, Scan.started_at, since, until)
    rows, after = _paged(list((await session.scalars(query)).all()), limit)
    return Page([ScanView.of(r) for r in rows], after)


async def get_scan(session: AsyncSession, scan_id: int) -> ScanView | None:
    row = await session.get(Scan, scan_id)
    return ScanView.of(row) if row is not None else None
