"""The alert path as one object the HTTP surface calls: validate → group commit → outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts.group_commit import GroupCommitter
from core.alerts.ingest import Ingestor, IngestOutcome, IngestSettings
from core.alerts.webhook import WebhookPayload
from core.config import Settings
from core.db.types import utcnow
from core.policy.store import PolicyCache

# Deadlocks and serialisation failures are the database asking for a retry.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


class AlertService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policies: PolicyCache,
        settings: Settings,
        *,
        writers: int | None = None,
    ) -> None:
        self._sessions = sessions
        self.policies = policies
        self._ingestor = Ingestor(
            IngestSettings(
                default_channel=settings.infraai_channel,
                proposal_ttl=timedelta(seconds=settings.proposal_ttl_seconds),
                dry_run=settings.infraai_dry_run,
            )
        )
        if writers is None:
            writers = 1 if settings.is_sqlite else 2
        self._committer: GroupCommitter[WebhookPayload, IngestOutcome] = GroupCommitter(
            self._commit, writers=writers
        )

    async def ingest(self, payload: WebhookPayload) -> IngestOutcome:
        return await self._committer.submit(payload)

    async def close(self) -> None:
        await self._committer.stop()

    async def _commit(self, payloads: Sequence[WebhookPayload]) -> list[IngestOutcome]:
        policies = await self.policies.get()
        for attempt in range(3):
            try:
                async with self._sessions() as session, session.begin():
                    return await self._ingestor.ingest_batch(session, payloads, policies, utcnow())
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if code not in _RETRYABLE_SQLSTATES or attempt == 2:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")
