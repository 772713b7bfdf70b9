"""The alert path as one object the HTTP surface calls: validate → group commit → outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from core.alerts.group_commit import GroupCommitter, first_line, is_connection_fault
from core.alerts.ingest import Ingestor, IngestOutcome, IngestSettings
from core.alerts.ingest_sql import ACTOR
from core.alerts.webhook import WebhookPayload
from core.audit import record
from core.config import Settings
from core.db.types import utcnow
from core.policy.store import LoadedPolicies, PolicyCache

log = logging.getLogger(__name__)

# Deadlocks and serialisation failures are the database asking for a retry.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


class _WriterConnections:
    """Connections the group-commit writers keep between batches.

    A pool checkout pre-pings (three round trips on asyncpg: BEGIN, SELECT 1, ROLLBACK), which
    for a busy webhook cost as much as the batch's own statements. The writers keep their
    connection instead; one idle longer than `max_idle` goes back to the pool (its next
    checkout pre-pings), and a database fault drops them all, so a restarted server still
    costs one failed delivery per writer at most, as with the pool.
    """

    def __init__(self, engine: AsyncEngine, max_idle: float = 10.0) -> None:
        self._engine = engine
        self._max_idle = max_idle
        self._idle: list[tuple[AsyncConnection, float]] = []

    async def acquire(self) -> AsyncConnection:
        now = time.monotonic()
        while self._idle:
            connection, since = self._idle.pop()
            if now - since < self._max_idle:
                return connection
            await self._close(connection)
        return await self._engine.connect()

    def release(self, connection: AsyncConnection) -> None:
        self._idle.append((connection, time.monotonic()))

    async def discard(self, connection: AsyncConnection, *, all_idle: bool) -> None:
        await self._close(connection)
        if all_idle:
            await self.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _since in idle:
            await self._close(connection)

    @staticmethod
    async def _close(connection: AsyncConnection) -> None:
        with contextlib.suppress(Exception):  # a broken connection: the pool discards it
            await connection.close()


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
        self._connections = _WriterConnections(sessions.kw["bind"])
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
        await self._connections.close()

    async def _commit(self, payloads: Sequence[WebhookPayload]) -> list[IngestOutcome]:
        policies = await self.policies.get()
        if len(payloads) != 1:
            # The group committer retries a failed batch delivery by delivery.
            return await self._commit_retrying(payloads, policies)
        try:
            return await self._commit_retrying(payloads, policies)
        except Exception as exc:
            if is_connection_fault(exc):
                raise
            error = exc
        # One delivery the database refused: alert by alert, so one value nothing foresaw
        # costs that alert (recorded), never its neighbours or a retry loop.
        return [await self._commit_alert_by_alert(payloads[0], policies, error)]

    async def _commit_alert_by_alert(
        self, payload: WebhookPayload, policies: LoadedPolicies, error: Exception
    ) -> IngestOutcome:
        log.warning(
            "a delivery of %d alerts failed (%s); committing them one by one",
            len(payload.alerts),
            first_line(error),
        )
        total = IngestOutcome(received=len(payload.alerts))
        for alert in payload.alerts:
            single = payload.model_copy(update={"alerts": [alert]})
            try:
                [outcome] = await self._commit_retrying([single], policies)
            except Exception as exc:
                if is_connection_fault(exc):
                    raise
                await self._record_refusal(alert.fingerprint, alert.alertname, exc)
                total.refused += 1
                continue
            total.proposals += outcome.proposals
            total.by_policy.update(outcome.by_policy)
            total.rate_limited += outcome.rate_limited
            total.render_errors += outcome.render_errors
            total.auto_approved.extend(outcome.auto_approved)
            total.superseded.extend(outcome.superseded)
        return total

    async def _record_refusal(self, fingerprint: str, alertname: str, exc: Exception) -> None:
        """An alert the database would not store: an audit event says which and why."""
        reason = first_line(exc)
        log.error("alert %s (%s) not stored: %s", fingerprint, alertname[:100], reason)
        state = getattr(getattr(exc, "orig", None), "sqlstate", None)
        async with self._sessions() as session, session.begin():
            record(
                session,
                ACTOR,
                "alert.refused",
                f"alert/{fingerprint}",
                alertname=alertname[:255],
                error=f"{type(exc).__name__} (SQLSTATE {state})" if state else type(exc).__name__,
            )

    async def _commit_retrying(
        self, payloads: Sequence[WebhookPayload], policies: LoadedPolicies
    ) -> list[IngestOutcome]:
        for attempt in range(3):
            try:
                return await self._commit_once(payloads, policies)
            except DBAPIError as exc:
                if not _retryable(exc) or attempt == 2:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _commit_once(
        self, payloads: Sequence[WebhookPayload], policies: LoadedPolicies
    ) -> list[IngestOutcome]:
        connection = await self._connections.acquire()
        try:
            async with self._sessions(bind=connection) as session, session.begin():
                outcomes = await self._ingestor.ingest_batch(session, payloads, policies, utcnow())
        except BaseException as exc:
            fault = is_connection_fault(exc)
            await self._connections.discard(connection, all_idle=fault)
            raise
        self._connections.release(connection)
        self._ingestor.committed(session)
        return outcomes


def _retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in _RETRYABLE_SQLSTATES
