"""`infraai serve` and `infraai chat`: the long-running processes of the bot.

serve: one asyncio process for the HTTP app (alerts, health, metrics, and Slack's Request URL
in HTTP mode), Slack (Socket Mode when SLACK_APP_TOKEN is set), the outbox drain and the
maintenance sweep. Without Slack credentials the console takes Slack's place (the embedded
default). chat: the console alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys

from aiohttp import web

from bot.http.app import create_app
from bot.http.server import make_runner
from core.approvals import TrustedAuthorizer
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
    runtime.policies.invalidate()
    log.info("policies from %s: %s", path, result.summary())


# The collector's thresholds once serving (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (10_000, 20, 20)


def settle_heap() -> None:
    """Move everything allocated at start-up out of the garbage collector's reach, and make
    its collections rarer.

    The collector otherwise rescans the long-lived start-up objects (the compiled policies,
    SQLAlchemy's metadata, the Slack and Kubernetes clients) on every full collection; those
    pauses held the event loop for up to 0.3 s under an alert storm (bench/ingest.py). What
    is left are the caches that make repeated alerts cheap (decisions, serialised rows):
    they grow with every new alert and, at CPython's default thresholds, set off a full
    collection every second or so under an alert storm. At `GC_THRESHOLDS` the collector
    held the loop 70 % less (0.22 s instead of 0.74–0.82 s in 10 s at 32 connections,
    longest pause 50 ms instead of 70–90), for at most 10,000 young objects more in memory.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, console: bool | None = None
) -> int:
    from bot.slack.app import slack_configured

    stop = stop or asyncio.Event()
    use_slack = slack_configured(settings)
    with_console = False
    socket_handler = None
    if use_slack:
        from bot.slack.app import build_app, mount, web_client
        from bot.slack.authorizer import SlackAuthorizer
        from bot.slack.notifier import SlackNotifier

        client = web_client(settings, retry_rate_limits=True)
        runtime = Runtime.build(settings, authorizer=SlackAuthorizer(client))
        runtime.attach_notifier(SlackNotifier(web_client(settings)))
        if not settings.infraai_channel:
            log.warning(
                "INFRAAI_CHANNEL is unset: proposals of policies without `channel:` "
                "have nowhere to go in Slack"
            )
    else:
        from bot.console import ConsoleNotifier

        runtime = Runtime.build(settings, authorizer=TrustedAuthorizer())
        runtime.attach_notifier(ConsoleNotifier())
    try:
        await runtime.check_schema()
        await apply_startup_policies(runtime)
        app = create_app(runtime)
        if use_slack:
            bolt = build_app(runtime, client)
            if settings.slack_app_token:
                from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

                socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token)
                await socket_handler.connect_async()  # type: ignore[no-untyped-call]
                log.info("Slack: Socket Mode connected")
            else:
                mount(app, bolt, secret=settings.slack_signing_secret or "")
                log.info("Slack: HTTP mode at POST /slack/events")
        runner = make_runner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.infraai_host, settings.infraai_port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.infraai_host}:{settings.infraai_port}: {exc.strerror}"
            ) from None
        runtime.start_background()
        settle_heap()
        log.info("InfraAI listening on http://%s:%s", settings.infraai_host, settings.infraai_port)
        _stop_on_signals(stop)
        with_console = console if console is not None else (not use_slack and sys.stdin.isatty())
        if with_console:
            from bot.console import read_lines

            async def console_then_stop() -> None:
                # `exit`, `quit` or Ctrl-D at the console ends the whole process.
                await read_lines(runtime)
                stop.set()

            runtime.spawn(console_then_stop())
        try:
            await stop.wait()
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()  # type: ignore[no-untyped-call]
            await runner.cleanup()
    finally:
        await runtime.close()
    if with_console:
        from bot.console import GOODBYE

        print(GOODBYE, flush=True)
    return 0


async def chat(settings: Settings) -> int:
    """The console alone: proposals and results here, commands typed at the prompt."""
    from bot.console import GOODBYE, ConsoleNotifier, read_lines

    runtime = Runtime.build(settings, authorizer=TrustedAuthorizer())
    runtime.attach_notifier(ConsoleNotifier())
    try:
        await runtime.check_schema()
        await apply_startup_policies(runtime)
        runtime.start_background()
        await read_lines(runtime)
    finally:
        await runtime.close()
    print(GOODBYE, flush=True)
    return 0
