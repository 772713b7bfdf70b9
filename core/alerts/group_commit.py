"""Group commit: concurrent webhook deliveries share one transaction.

Each delivery waits for the commit that includes it, so "2xx only after commit" holds, but
N concurrent deliveries cost one round of statements and one fsync instead of N. The
writers are few (a couple per process): with many senders the queue fills while a batch is
in flight and the next batch is larger, so throughput rises with load and latency stays flat.

Sharing a transaction must not mean sharing a fate: only a connection-class fault (the
database is away) fails the batch as "unavailable"; any other failure is retried item by item,
so one delivery the database refuses cannot take its neighbours down with it.
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

# SQLSTATEs that say "the server or the connection", not "this statement": connection
# exceptions (class 08), operator intervention (57P01-57P03: shutdown, crash, starting up),
# too many connections, out of memory or disk.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "53100", "53200")


def is_connection_fault(exc: BaseException) -> bool:
    """Whether `exc` means the database is away (retry later) rather than refusing this data.

    asyncpg's connect errors surface as OSError; a pool checkout that waited too long as the
    pool's timeout; a connection lost mid-statement as InterfaceError or as a DBAPIError that
    invalidated its connection. An OperationalError without SQLSTATE is the driver's, and
    SQLite's ("database is locked", "unable to open database file") are all of this kind.
    """
    if isinstance(exc, OSError | asyncio.TimeoutError | PoolTimeout | InterfaceError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(exc, OperationalError) and not state:
        return True
    if isinstance(orig, OSError | asyncio.TimeoutError):
        return True
    return bool(state) and str(state).startswith(_CONNECTION_SQLSTATES)


class DatabaseUnavailable(Exception):
    """The database did not take the write; the caller should answer 503 so it is retried."""


def first_line(exc: BaseException) -> str:
    """An exception's first line, bounded: what a log line or an audit event may carry."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


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
            except Exception as exc:
                if is_connection_fault(exc) or len(live) == 1:
                    self._fail(live, exc)
                    continue
                log.warning(
                    "a batch of %d failed (%s); committing its items one by one",
                    len(live),
                    first_line(exc),
                )
                for item, fut in live:
                    await self._commit_alone(item, fut)
                continue
            for (_item, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def _commit_alone(self, item: T, fut: asyncio.Future[R]) -> None:
        try:
            [result] = await self._commit_batch([item])
        except Exception as exc:
            self._fail([(item, fut)], exc)
            return
        if not fut.done():
            fut.set_result(result)

    @staticmethod
    def _fail(live: Sequence[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
        error: BaseException = exc
        if is_connection_fault(exc):
            # The reason is logged here; the sender only learns to retry.
            log.warning("database unavailable: %s", first_line(exc))
            error = DatabaseUnavailable("database unavailable")
        else:
            log.error("commit failed: %s", first_line(exc), exc_info=exc)
        for _item, fut in live:
            if not fut.done():
                fut.set_exception(error)
