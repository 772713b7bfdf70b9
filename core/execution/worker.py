"""The RQ side: the job entry point and the worker process's long-lived context.

RQ job functions are synchronous; `run_proposal_job` drives the async job function on one
event loop kept for the life of the worker process, so the database pool and the adapters'
clients are built once per worker, not once per job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.config import Settings, get_settings
from core.db.engine import create_engine, session_factory
from core.execution.integrations import Integrations
from core.execution.job import JobContext, execute_proposal

log = logging.getLogger(__name__)


@dataclass
class WorkerProcess:
    loop: asyncio.AbstractEventLoop
    ctx: JobContext
    engine: AsyncEngine


_process: WorkerProcess | None = None


def worker_engine(settings: Settings) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """The worker's engine, and sessions (and job transactions) at READ COMMITTED on it.

    On PostgreSQL the pool's connections rest in autocommit mode, and only the sessions'
    view of the engine opens transactions. Why: the pre-ping that checks a pooled
    connection before each use (a restarted server costs no job) is one round trip on a
    connection in autocommit mode, but three — BEGIN, the ping, ROLLBACK — on one that is
    not. A job checks a connection out twice (the claim and the finish, each one statement
    in autocommit mode), so this saves four of its eight round trips to PostgreSQL; every
    transaction still runs where it did (the view sets the isolation level after the
    checkout, and the pool puts it back on return).
    """
    if settings.is_sqlite:
        engine = create_engine(settings.database_url)
        return engine, session_factory(engine)
    engine = create_engine(
        settings.database_url, pool_size=2, max_overflow=2, isolation_level="AUTOCOMMIT"
    )
    return engine, session_factory(engine.execution_options(isolation_level="READ COMMITTED"))


def init_worker_process(settings: Settings, worker_name: str | None = None) -> WorkerProcess:
    """Build (once) the loop, engine and adapters this worker process uses for every job."""
    global _process
    if _process is None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        engine, sessions = worker_engine(settings)
        ctx = JobContext(settings, sessions, Integrations(settings))
        if worker_name:
            ctx.worker_name = worker_name
        _process = WorkerProcess(loop, ctx, engine)
    return _process


def run_proposal_job(proposal_id: int) -> str:
    """RQ entry point (`core.execution.worker.run_proposal_job`)."""
    from rq import get_current_job

    process = _process or init_worker_process(get_settings())
    job = get_current_job()
    worker_name = getattr(job, "worker_name", None)
    if worker_name:
        process.ctx.worker_name = worker_name
    return process.loop.run_until_complete(
        execute_proposal(process.ctx, proposal_id, job.id if job is not None else None)
    )


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> int:
    """`infraai worker`: an RQ SimpleWorker on the `infraai` queue.

    SimpleWorker (no fork per job) so the process's database pool and adapter clients serve
    every job; isolation comes from per-action timeouts, and scaling from running more
    worker processes against the same Redis.
    """
    from redis import Redis
    from rq import Queue, SimpleWorker

    from core.db.schema import require_current_schema
    from core.execution.executor import QUEUE_NAME

    assert settings.redis_url
    process = init_worker_process(settings, name)
    process.loop.run_until_complete(require_current_schema(process.engine))
    connection = Redis.from_url(settings.redis_url)
    worker = SimpleWorker(
        [Queue(QUEUE_NAME, connection=connection)], connection=connection, name=name
    )
    process.ctx.worker_name = worker.name
    worker.work(burst=burst, logging_level="INFO")
    return 0
