"""Listeners ack, then hand their work to a task: the answer to Slack never waits for it."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from core.runtime import Runtime

log = logging.getLogger(__name__)


def in_background(runtime: Runtime, work: Coroutine[Any, Any, None], what: str) -> None:
    """Run a listener's work after its ack, as a task the runtime owns (cancelled at
    shutdown); a failure is logged, never lost with the task."""

    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("%s failed", what)

    runtime.spawn(run())
