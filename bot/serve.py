"""`infraai serve`: one asyncio process for the HTTP app, Slack and the notifier."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot.http.app import create_app
from core.config import Settings
from core.policy.spec import PolicyError
from core.policy.store import apply_policies, load_document
from core.runtime import Runtime

log = logging.getLogger(__name__)


class StartupError(Exception):
    """InfraAI cannot start; the message is one line for the operator."""


async def apply_startup_policies(runtime: Runtime) -> None:
    """INFRAAI_POLICIES: apply the file at start, all or nothing, as `policy apply` would."""
    path = runtime.settings.infraai_policies
    if path is None:
        return
    try:
        specs = load_document(path.read_text())
    except PolicyError as exc:
        raise StartupError(f"INFRAAI_POLICIES={path}: {exc}") from None
    async with runtime.sessions() as session, session.begin():
        result = await apply_policies(session, specs, "startup")
    log.info("policies from %s: %s", path, result.summary())


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    runtime = Runtime.build(settings)
    await runtime.check_schema()
    await apply_startup_policies(runtime)
    app = create_app(runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.infraai_host, settings.infraai_port)
    await site.start()
    log.info("InfraAI listening on http://%s:%s", settings.infraai_host, settings.infraai_port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await runtime.close()
    return 0
