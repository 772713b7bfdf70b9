"""The RQ side: the job entry point and the worker process's long-lived context.

RQ job functions are synchronous; `run_proposal_job` drives the async job function on one
event loop kept for the life of the worker process, so the database pool and the adapters'
clients are built once per worker, not once per job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

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


def init_worker_process(settings: Settings, worker_name: str | None = None) -> WorkerProcess:
    """Build (once) the loop, engine and adapters this worker process uses for every job."""
    global _process
    if _process is None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        engine = (
            create_engine(settings.database_url, pool_size=2, max_overflow=2)
            if not settings.is_sqlite
            else create_engine(settings.database_url)
        )
        ctx = JobContext(settings, session_factory(engine), Integrations(settings))
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
