"""Health of what the bot depends on, answered without letting a dead dependency stall it.

Two shapes, for two kinds of dependency:

* **Integrations** (Kubernetes, vSphere, …) are checked by ONE background task,
  `HealthMonitor`, every `every` seconds; `/readyz` and `/infraai status` read its last
  result and never call an adapter themselves. A check that gets no answer within its
  deadline is reported as failing "no answer within N s"; its thread is left to end on its
  own (a thread cannot be stopped), and until it has, that integration is not checked again
  — so a wedged vCenter holds one thread, not one per probe. Checks run on daemon threads
  of their own: not the loop's default executor (the critical path's), not the adapter pool
  (actions), and never in the way of the process exiting.
* **The database and Redis** answer fast or not at all, but every probe would take a
  connection: `SharedCheck` runs one probe at a time whoever asks (a flood of `/readyz`
  shares it) and reuses a success for a moment. A failure is never reused, so recovery shows
  at the next probe.

What a check says about *why* it failed (driver messages, host names, the database name) is
logged, never handed to HTTP clients: `Health.public` and `SharedCheck`'s answers carry
only what is safe to show anyone who can reach `/readyz`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from core.execution.integrations import Integrations
from core.ports import Health

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0  # seconds between two rounds of integration checks
CHECK_DEADLINE = 10.0  # seconds a check may take before it counts as failing
SUCCESS_REUSED_FOR = 1.0  # seconds a database/Redis success answers further probes


class HealthMonitor:
    """The integrations' health, refreshed in the background; readers get the last result."""

    def __init__(
        self,
        integrations: Integrations,
        *,
        every: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.integrations = integrations
        self.every = CHECK_EVERY if every is None else every
        self.deadline = CHECK_DEADLINE if deadline is None else deadline
        self._latest: dict[str, Health] = {}
        self._running: dict[str, concurrent.futures.Future[Health]] = {}
        self._task: asyncio.Task[None] | None = None
        self._first_round = asyncio.Event()

    def start(self) -> None:
        """Start the background refresh (idempotent; needs a running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="health")

    async def stop(self) -> None:
        self._first_round.set()  # nobody waits for a round that will not come
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def current(self) -> list[Health]:
        """The last result of every integration, without calling any.

        Before the first round has finished (the process just started) this waits for it:
        the round is bounded by the per-check deadline, and it is the one round everybody
        shares — no caller starts a check of its own.
        """
        if not self._first_round.is_set():
            self.start()
            await self._first_round.wait()
        return [
            self._latest.get(name) or Health(name, "failing", "not checked", "not checked")
            for name in self.integrations.names()
        ]

    async def refresh(self) -> list[Health]:
        """One round: every integration checked at once, each within the deadline."""
        results = await asyncio.gather(*(self._check(n) for n in self.integrations.names()))
        for health in results:
            self._note(health)
        self._first_round.set()
        return list(results)

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # never let one bad round end the monitor
                log.exception("integration health round failed")
            await asyncio.sleep(self.every)

    async def _check(self, name: str) -> Health:
        previous = self._running.get(name)
        if previous is not None and not previous.done():
            return self._no_answer(name, " (the previous check has not returned)")
        future: concurrent.futures.Future[Health] = concurrent.futures.Future()
        self._running[name] = future
        threading.Thread(
            target=self._run_check, args=(name, future), name=f"health-{name}", daemon=True
        ).start()
        done, _ = await asyncio.wait({asyncio.wrap_future(future)}, timeout=self.deadline)
        if not done:
            return self._no_answer(name, "")
        return future.result()

    def _run_check(self, name: str, future: concurrent.futures.Future[Health]) -> None:
        try:
            health = self.integrations.health(name)  # never raises
        except BaseException as exc:  # but a bug must still complete the future
            future.set_exception(exc)
            raise
        future.set_result(health)

    def _no_answer(self, name: str, why: str) -> Health:
        message = f"no answer within {self.deadline:g} s{why}"
        return Health(name, "failing", message, message)

    def _note(self, health: Health) -> None:
        """Remember the result; log each change of state with the operator's detail."""
        before = self._latest.get(health.name)
        if before is None or before.state != health.state:
            level = logging.WARNING if health.state == "failing" else logging.INFO
            log.log(level, "integration %s: %s (%s)", health.name, health.state, health.detail)
        self._latest[health.name] = health


Probe = Callable[[], Awaitable[tuple[bool, str]]]


class SharedCheck:
    """One probe in flight at a time, whoever asks; a success answers for a moment.

    A success answers with the probe's detail ("ok", "in-process"); a failure with
    "unavailable", its detail (a driver's message, naming the host and database) going to
    the log only.
    """

    def __init__(
        self,
        name: str,
        probe: Probe,
        *,
        reuse_success_for: float = SUCCESS_REUSED_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._probe = probe
        self._reuse = reuse_success_for
        self._clock = clock
        self._ok_at: float | None = None
        self._ok_detail = "ok"
        self._in_flight: asyncio.Future[tuple[bool, str]] | None = None

    async def __call__(self) -> tuple[bool, str]:
        if self._ok_at is not None and self._clock() - self._ok_at < self._reuse:
            return True, self._ok_detail
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._probe_once())
        # Shielded: a caller that gives up (a client hanging up) does not cancel the others'.
        return await asyncio.shield(self._in_flight)

    async def _probe_once(self) -> tuple[bool, str]:
        try:
            try:
                ok, detail = await self._probe()
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
        finally:
            self._in_flight = None
        if ok:
            self._ok_at, self._ok_detail = self._clock(), detail
            return True, detail
        self._ok_at = None
        log.warning("%s check failed: %s", self.name, detail)
        return False, "unavailable"
