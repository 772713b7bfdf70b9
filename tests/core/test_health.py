"""SharedCheck: one probe in flight whoever asks, a success reused for a moment, a failure
never, and a failure's reason kept out of the answer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.health import SharedCheck


class Probe:
    """A probe the test opens and closes by hand, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: tuple[bool, str] = (True, "ok")
        self.gate = asyncio.Event()

    async def __call__(self) -> tuple[bool, str]:
        self.calls += 1
        await self.gate.wait()
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_probe() -> None:
    probe = Probe()
    check = SharedCheck("database", probe, clock=Clock())
    callers = [asyncio.create_task(check()) for _ in range(200)]
    await asyncio.sleep(0)
    probe.gate.set()
    assert await asyncio.gather(*callers) == [(True, "ok")] * 200
    assert probe.calls == 1


async def test_a_success_is_reused_briefly_and_a_failure_never() -> None:
    probe, clock = Probe(), Clock()
    probe.gate.set()
    check = SharedCheck("database", probe, reuse_success_for=1.0, clock=clock)
    assert await check() == (True, "ok")
    clock.now += 0.5
    assert await check() == (True, "ok")
    assert probe.calls == 1
    clock.now += 0.6
    probe.answer = (False, "connection refused")
    assert await check() == (False, "unavailable")
    assert await check() == (False, "unavailable")
    assert probe.calls == 3  # each failure probed again: recovery shows at once
    probe.answer = (True, "ok")
    assert await check() == (True, "ok")


async def test_the_reason_of_a_failure_is_logged_not_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> tuple[bool, str]:
        raise OSError("could not reach db.internal:5432 (database infraai_prod)")

    caplog.set_level(logging.WARNING)
    check = SharedCheck("database", broken, clock=Clock())
    assert await check() == (False, "unavailable")
    assert "db.internal:5432" in caplog.text


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    probe = Probe()
    check = SharedCheck("database", probe, clock=Clock())
    impatient = asyncio.create_task(check())
    patient = asyncio.create_task(check())
    await asyncio.sleep(0)
    impatient.cancel()
    probe.gate.set()
    assert await patient == (True, "ok")
