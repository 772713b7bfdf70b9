"""Executors: how an approved proposal reaches the job function.

`RQExecutor` enqueues `proposal-<id>` on the `infraai` queue (REDIS_URL set; run as many
`infraai worker`s as needed). `InProcessExecutor` runs the same coroutine on this process's
loop with the adapter call on a worker thread (the embedded default). Both are safe to call
twice for one proposal: RQ refuses a duplicate job id, and the job itself claims the
proposal with a conditional update.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Protocol

from core.execution.job import JobContext, execute_proposal

log = logging.getLogger(__name__)

QUEUE_NAME = "infraai"


def job_id_for(proposal_id: int) -> str:
    return f"proposal-{proposal_id}"


class Executor(Protocol):
    async def enqueue(self, proposal_id: int) -> str:
        """Hand the proposal to execution; returns a short state for people ("queued")."""
        ...

    async def ping(self) -> tuple[bool, str]: ...

    async def close(self) -> None: ...


class InProcessExecutor:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._tasks: dict[int, asyncio.Task[str]] = {}

    async def enqueue(self, proposal_id: int) -> str:
        if proposal_id in self._tasks and not self._tasks[proposal_id].done():
            return "running"
        task = asyncio.create_task(
            execute_proposal(self._ctx, proposal_id, job_id_for(proposal_id))
        )
        self._tasks[proposal_id] = task
        task.add_done_callback(functools.partial(self._done, proposal_id))
        return "running"

    def _done(self, proposal_id: int, task: asyncio.Task[str]) -> None:
        if self._tasks.get(proposal_id) is task:
            del self._tasks[proposal_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("in-process job for proposal %s crashed: %r", proposal_id, task.exception())

    async def wait_idle(self) -> None:
        """For tests and shutdown: wait until every running job has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def ping(self) -> tuple[bool, str]:
        return True, "in-process"

    async def close(self) -> None:
        await self.wait_idle()


class RQExecutor:
    def __init__(self, redis_url: str, *, job_timeout: int, queue_name: str = QUEUE_NAME) -> None:
        from redis import Redis
        from rq import Queue

        self._redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
        self.queue = Queue(queue_name, connection=self._redis)
        self._job_timeout = job_timeout

    def _enqueue_sync(self, proposal_id: int, *, replace_ended: bool = True) -> str:
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job, JobStatus

        job_id = job_id_for(proposal_id)
        try:
            self.queue.enqueue(
                "core.execution.worker.run_proposal_job",
                proposal_id,
                job_id=job_id,
                unique=True,
                job_timeout=self._job_timeout,
                result_ttl=7 * 86400,
                failure_ttl=30 * 86400,
                description=f"proposal #{proposal_id}",
            )
        except DuplicateJobError:
            # RQ keeps an ended job for its result/failure TTL (days), and refuses the id
            # meanwhile. The proposal is enqueued only while it is approved, so an ended job
            # did not run it (it failed before claiming it, or its worker died): replace it,
            # or the maintenance sweep would requeue the proposal in vain until the TTL ends.
            if not replace_ended:
                return "already queued"
            try:
                job = Job.fetch(job_id, connection=self._redis)
                status = job.get_status()
            except NoSuchJobError:
                return self._enqueue_sync(proposal_id, replace_ended=False)
            ended = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
            if status not in ended:
                return "already queued"
            job.delete()
            return self._enqueue_sync(proposal_id, replace_ended=False)
        return "queued"

    async def enqueue(self, proposal_id: int) -> str:
        return await asyncio.to_thread(self._enqueue_sync, proposal_id)

    async def ping(self) -> tuple[bool, str]:
        try:
            await asyncio.to_thread(self._redis.ping)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, "ok"

    async def close(self) -> None:
        await asyncio.to_thread(self._redis.close)
