"""The process's shared parts, built once from Settings: engine, sessions, caches, services.

Every surface (HTTP, Slack, console, CLI, worker) builds one Runtime and reaches the domain
through it, so the embedded default and production wire the same objects the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.alerts.ingest import IngestOutcome
from core.alerts.service import AlertService
from core.config import Settings
from core.db.engine import create_engine, session_factory
from core.db.schema import require_current_schema
from core.policy.store import PolicyCache


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    policies: PolicyCache
    alerts: AlertService
    # Called after each committed ingest (enqueue auto-approved jobs, wake the notifier).
    on_ingested: list[Callable[[IngestOutcome], None]] = field(default_factory=list)
    # Extra readiness checks (Redis when configured): name → async () -> (ok, detail).
    readiness_probes: dict[str, Callable[[], Awaitable[tuple[bool, str]]]] = field(
        default_factory=dict
    )

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        policies = PolicyCache(sessions)
        return cls(settings, engine, sessions, policies, AlertService(sessions, policies, settings))

    async def check_schema(self) -> None:
        await require_current_schema(self.engine)

    async def database_ok(self) -> tuple[bool, str]:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return False, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return True, "ok"

    async def close(self) -> None:
        await self.alerts.close()
        await self.engine.dispose()
