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


@dataclass(frozen=True)
class Slice:
    """Which page: at most `limit` rows below the id `before`, with their time in
    [`since`, `until`)."""

    limit: int
    before: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def _page_of(
    session: AsyncSession,
    query: Any,
    ids: Any,
    times: Any,
    page: Slice,
    **equal: tuple[Any, Any],
) -> tuple[list[Any], int | None]:
    """The rows of `query` on `page`, newest id first, with each (column, value) of `equal`
    whose value is given required; and the id the next page continues below."""
    query = query.order_by(ids.desc()).limit(page.limit + 1)
    if page.before is not None:
        query = query.where(ids < page.before)
    for column, value in equal.values():
        if value is not None and value != "":
            query = query.where(column == value)
    if page.since is not None:
        query = query.where(times >= page.since)
    if page.until is not None:
        query = query.where(times < page.until)
    rows = list((await session.execute(query)).all())
    if len(rows) <= page.limit:
        return rows, None
    return rows[: page.limit], int(rows[page.limit - 1][0].id)


async def page_proposals(
    session: AsyncSession, page: Slice, *, status: str | None = None, policy: str | None = None
) -> Page[ProposalView]:
    """Proposals by when they were created."""
    rows, after = await _page_of(
        session,
        sa.select(Proposal),
        Proposal.id,
        Proposal.created_at,
        page,
        status=(Proposal.status, status),
        policy=(Proposal.policy_name, policy),
    )
    return Page([ProposalView.of(r) for (r,) in rows], after)


async def page_alerts(
    session: AsyncSession,
    page: Slice,
    *,
    status: str | None = None,
    alertname: str | None = None,
) -> Page[AlertView]:
    """Alerts by when they were last received."""
    rows, after = await _page_of(
        session,
        sa.select(Alert),
        Alert.id,
        Alert.last_seen,
        page,
        status=(Alert.status, status),
        alertname=(Alert.alertname, alertname),
    )
    return Page([AlertView.of(r) for (r,) in rows], after)


async def get_alert(session: AsyncSession, alert_id: int) -> AlertView | None:
    row = await session.get(Alert, alert_id)
    return AlertView.of(row) if row is not None else None


async def page_jobs(
    session: AsyncSession,
    page: Slice,
    *,
    status: str | None = None,
    proposal_id: int | None = None,
) -> Page[JobRow]:
    """Job runs by when they started."""
    rows, after = await _page_of(
        session,
        sa.select(JobLog, Proposal.action, Proposal.target).join(
            Proposal, Proposal.id == JobLog.proposal_id
        ),
        JobLog.id,
        JobLog.started_at,
        page,
        status=(JobLog.status, status),
        proposal=(JobLog.proposal_id, proposal_id),
    )
    return Page([JobRow.of(job, action, target) for job, action, target in rows], after)


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
        [JobRow.of(job, row.action, row.target) for job in jobs],
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
    session: AsyncSession, page: Slice, *, status: str | None = None
) -> Page[ScanView]:
    """Discovery scans by when they started."""
    rows, after = await _page_of(
        session, sa.select(Scan), Scan.id, Scan.started_at, page, status=(Scan.status, status)
    )
    return Page([ScanView.of(r) for (r,) in rows], after)


async def get_scan(session: AsyncSession, scan_id: int) -> ScanView | None:
    row = await session.get(Scan, scan_id)
    return ScanView.of(row) if row is not None else None
