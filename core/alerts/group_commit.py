"""Group commit: concurrent webhook deliveries share one transaction.

Each delivery waits for the commit that includes it, so "2xx only after commit" holds, but
N concurrent deliveries cost one round of statements and one fsync instead of N. The
writers are few (a couple per process): with many senders the queue fills while a batch is
in flight and the next batch is larger, so throughput rises with load and latency stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# asyncpg's own connection errors surface as OSError subclasses when raised at connect time.
DATABASE_FAULTS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DBAPIError,
    PoolTimeout,
    OSError,
    asyncio.TimeoutError,
)


class DatabaseUnavailable(Exception):
    """The database did not take the write; the caller should answer 503 so it is retried."""


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        commit_batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        writers: int = 2,
        max_batch: int = 64,
    ) -> None:
        self._commit_batch = commit_batch
        self._writers = writers
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"group-commit-{i}")
                for i in range(self._writers)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while not self._queue.empty():
            _item, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(DatabaseUnavailable("shutting down"))

    async def submit(self, item: T) -> R:
        """Queue one item and wait until the transaction holding it has committed."""
        self.start()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if not live:
                continue
            try:
                results = await self._commit_batch([item for item, _ in live])
            except DATABASE_FAULTS as exc:
                log.warning("database unavailable: %s", str(exc).splitlines()[0][:200])
                error: BaseException = DatabaseUnavailable(str(exc).splitlines()[0][:200])
                for _item, fut in live:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            except Exception as exc:
                log.exception("group commit failed")
                for _item, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_item, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
