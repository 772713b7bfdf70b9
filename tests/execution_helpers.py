"""Builders shared by the execution tests: proposals in a given state, a job context wired to
the fake Kubernetes API, and readers for what a job leaves behind (job logs, thread messages,
audit verbs)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.engine import create_engine, session_factory
from core.db.models import AuditEvent, JobLog, Notification, Proposal
from core.db.types import utcnow
from core.execution.integrations import Integrations
from core.execution.job import JobContext
from tests.conftest import make_settings
from tests.fakes.kube_api import FakeKubeAPI

CHANNEL = "C0OPS"
T = TypeVar("T")
_keys = itertools.count(1)


async def current(read: Callable[[], T]) -> T:
    """`read()` as a coroutine, so `eventually` can poll plain state (a fake's request log)."""
    return read()


def owned_pod(fake: FakeKubeAPI, namespace: str, name: str) -> None:
    """A pod owned by a ReplicaSet no deployment of the fake manages: restart_pod accepts
    it (it has a controller) and, once deleted, it stays gone — so a second delete would
    show as a 404 and in the request log."""
    fake.add_pod(
        namespace,
        name,
        owner={
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-5d4f8b7c9a",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/web-5d4f8b7c9a")),
            "controller": True,
            "blockOwnerDeletion": True,
        },
    )


async def add_proposal(
    sessions: async_sessionmaker[AsyncSession],
    action: str,
    params: dict[str, Any],
    *,
    status: str = "approved",
    dry_run: bool = False,
    policy_id: int | None = None,
    decided_at: datetime | None = None,
    expires_at: datetime | None = None,
    channel: str | None = CHANNEL,
) -> int:
    """A proposal in `status`, as a chat or command would have created it."""
    now = utcnow()
    async with sessions() as session, session.begin():
        proposal = Proposal(
            source="command",
            action=action,
            params=params,
            target=",".join(str(v) for v in params.values()),
            risk="write",
            approval="required",
            approvers=[],
            dry_run=dry_run,
            status=status,
            requested_by="U0ALICE",
            decided_by="U0ALICE" if status != "pending" else None,
            decided_at=(decided_at or now) if status != "pending" else None,
            expires_at=expires_at,
            policy_id=policy_id,
            dedup_key=f"test-{next(_keys)}-{uuid.uuid4().hex[:8]}",
            slack_channel=channel,
            created_at=now,
            updated_at=now,
        )
        session.add(proposal)
        await session.flush()
        return proposal.id


@asynccontextmanager
async def job_context(
    database_url: str, kubeconfig: Path | None = None, **settings: Any
) -> AsyncIterator[JobContext]:
    """A JobContext on `database_url`, its Kubernetes integration the cluster of `kubeconfig`
    (the fake's) through the production factory; other integrations come from `settings`.

    Heartbeats every 50 ms and retries after 10 ms, so retry and heartbeat tests take no time.
    """
    config = make_settings(
        database_url, kubeconfig=str(kubeconfig) if kubeconfig else None, **settings
    )
    engine = create_engine(database_url)
    # The production factory: KubernetesAdapter(kubeconfig=settings.kubeconfig).
    integrations = Integrations(config)
    ctx = JobContext(
        config,
        session_factory(engine),
        integrations,
        worker_name="test-worker",
        heartbeat_seconds=0.05,
        retry_backoff=(0.01,),
    )
    try:
        yield ctx
    finally:
        integrations.close()
        await engine.dispose()


async def proposal_row(sessions: async_sessionmaker[AsyncSession], proposal_id: int) -> Proposal:
    async with sessions() as session:
        row = await session.get(Proposal, proposal_id)
        assert row is not None
        return row


async def job_logs(
    sessions: async_sessionmaker[AsyncSession], proposal_id: int | None = None
) -> list[JobLog]:
    query = sa.select(JobLog).order_by(JobLog.proposal_id, JobLog.attempt)
    if proposal_id is not None:
        query = query.where(JobLog.proposal_id == proposal_id)
    async with sessions() as session:
        return list((await session.scalars(query)).all())


async def thread_texts(sessions: async_sessionmaker[AsyncSession], proposal_id: int) -> list[str]:
    """The replies the outbox holds for the proposal's thread, oldest first."""
    async with sessions() as session:
        payloads = (
            await session.scalars(
                sa.select(Notification.payload)
                .where(Notification.proposal_id == proposal_id, Notification.kind == "thread")
                .order_by(Notification.id)
            )
        ).all()
    return [str(p["text"]) for p in payloads]


async def audit_verbs(sessions: async_sessionmaker[AsyncSession], proposal_id: int) -> list[str]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(AuditEvent.verb)
                    .where(AuditEvent.subject == f"proposal/{proposal_id}")
                    .order_by(AuditEvent.id)
                )
            ).all()
        )
