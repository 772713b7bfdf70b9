"""Slack listeners, one module per surface; importing registers nothing."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, events
from core.runtime import Runtime


def register_listeners(app: AsyncApp, runtime: Runtime) -> None:
    commands.register(app, runtime)
    actions.register(app, runtime)
    events.register(app, runtime)
