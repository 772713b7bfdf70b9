"""The process's shared parts, built once from Settings: engine, sessions, caches, services.

Every surface (HTTP, Slack, console, CLI, worker) builds one Runtime and reaches the domain
through it, so the embedded default and production wire the same objects the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.alert_graph import AlertGraphs
from core.alerts.ingest import IngestOutcome
from core.alerts.service import AlertService
from core.approvals import Approvals, Authorizer, ListAuthorizer
from core.config import Settings
from core.db.engine import create_engine, session_factory
from core.db.schema import require_current_schema
from core.execution.executor import Executor, InProcessExecutor, RQExecutor
from core.execution.integrations import Integrations
from core.execution.job import JobContext
from core.health import HealthMonitor, SharedCheck
from core.maintenance import run_maintenance
from core.notifier import Notifier, OutboxDrain
from core.policy.store import PolicyCache
from core.ports import Health

if TYPE_CHECKING:
    from core.agent.assistant import Assistant

log = logging.getLogger(__name__)


def build_executor(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], integrations: Integrations
) -> Executor:
    if settings.redis_url:
        attempts = settings.infraai_job_attempts
        timeout = int(settings.infraai_action_timeout_seconds * attempts + 60)
        return RQExecutor(settings.redis_url, job_timeout=timeout)
    return InProcessExecutor(JobContext(settings, sessions, integrations))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    policies: PolicyCache
    alerts: AlertService
    integrations: Integrations
    executor: Executor
    approvals: Approvals
    health: HealthMonitor
    database_check: SharedCheck
    queue_check: SharedCheck
    drain: OutboxDrain | None = None
    # Called after each committed ingest (enqueue auto-approved jobs, wake the notifier).
    on_ingested: list[Callable[[IngestOutcome], None]] = field(default_factory=list)
    # Extra readiness checks (Redis when configured): name → async () -> (ok, detail), the
    # detail safe to show any HTTP client.
    readiness_probes: dict[str, Callable[[], Awaitable[tuple[bool, str]]]] = field(
        default_factory=dict
    )
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _assistant: Assistant | None = None

    async def assistant(self) -> Assistant:
        """The assistant of this process (`core.agent.assistant.Assistant`), built on first
        use: its model client and compiled graph are costly, its memory is in the database.
        Its module is imported in a thread, not at the top: LangChain takes about a second
        to import, and only when someone asks."""
        if self._assistant is None:
            module = await asyncio.to_thread(importlib.import_module, "core.agent.assistant")
            if self._assistant is None:  # another question may have loaded it meanwhile
                self._assistant = module.Assistant(self)
        return self._assistant

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        authorizer: Authorizer | None = None,
        integrations: Integrations | None = None,
        engine: AsyncEngine | None = None,
    ) -> Runtime:
        engine = engine or create_engine(settings.database_url)
        sessions = session_factory(engine)
        policies = PolicyCache(sessions)
        integrations = integrations or Integrations(settings)
        executor = build_executor(settings, sessions, integrations)
        approvals = Approvals(
            sessions, executor, authorizer or ListAuthorizer(), settings.infraai_approvers
        )
        runtime = cls(
            settings,
            engine,
            sessions,
            policies,
            AlertService(sessions, policies, settings),
            integrations,
            executor,
            approvals,
            HealthMonitor(integrations),
            SharedCheck("database", functools.partial(_database_probe, engine)),
            SharedCheck("queue", executor.ping),
        )
        if settings.redis_url:
            runtime.readiness_probes["redis"] = runtime.queue_check
        runtime.on_ingested.append(runtime._after_ingest)
        return runtime

    def attach_notifier(self, notifier: Notifier) -> OutboxDrain:
        self.drain = OutboxDrain(
            self.sessions,
            notifier,
            default_channel=self.settings.infraai_channel,
            default_approvers=self.settings.infraai_approvers,
            # Slack allows ~1 message a second per channel; a terminal has no such limit.
            pace_seconds=float(getattr(notifier, "pace_seconds", 1.0)),
            graphs=AlertGraphs(self.integrations),
        )
        return self.drain

    def _after_ingest(self, outcome: IngestOutcome) -> None:
        for proposal_id in outcome.auto_approved:
            self.spawn(self._enqueue(proposal_id))
        if self.drain is not None and (outcome.proposals or outcome.superseded):
            self.drain.wake()

    async def _enqueue(self, proposal_id: int) -> None:
        try:
            await self.executor.enqueue(proposal_id)
        except Exception as exc:  # the maintenance sweep retries it
            log.warning("enqueue of auto-approved proposal %s failed: %s", proposal_id, exc)

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    def start_background(self, maintenance_seconds: float = 5.0) -> None:
        """The notifier drain, the maintenance sweep and the integrations' health checks
        (the bot runs these)."""
        self.health.start()
        if self.drain is not None:
            self._tasks.append(asyncio.create_task(self.drain.run(), name="outbox-drain"))
        self._tasks.append(
            asyncio.create_task(self._maintenance(maintenance_seconds), name="maintenance")
        )

    async def _maintenance(self, every: float) -> None:
        while True:
            try:
                upkeep = await run_maintenance(self.sessions, self.executor)
                if self.drain is not None and (upkeep.expired or upkeep.lost):
                    self.drain.wake()
            except Exception as exc:
                log.warning("maintenance failed: %s", str(exc).splitlines()[0][:200])
            await asyncio.sleep(every)

    async def integration_health(self) -> list[Health]:
        """Each integration's last health, from the background monitor: never a call to an
        adapter, so a dead vCenter cannot slow a readiness probe or `/infraai status`."""
        return await self.health.current()

    async def check_schema(self) -> None:
        await require_current_schema(self.engine)

    async def database_ok(self) -> tuple[bool, str]:
        """(ok, "ok" | "unavailable"): one probe at a time however many ask (see SharedCheck);
        the driver's reason is logged, not returned."""
        return await self.database_check()

    async def close(self) -> None:
        await self.health.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.alerts.close()
        await self.executor.close()
        await asyncio.to_thread(self.integrations.close)
        await self.engine.dispose()


async def _database_probe(engine: AsyncEngine) -> tuple[bool, str]:
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return False, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return True, "ok"
