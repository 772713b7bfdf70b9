"""`/infraai …`: ack at once, run the deterministic command, answer (ephemeral by default)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import mrkdwn, payloads
from bot.slack.assistant import ask_at_the_root
from bot.slack.dashboards import post_panel_picture
from bot.slack.listeners.background import in_background
from bot.slack.render import render_reply
from core.commands import Dashboards, QueryResult, run_command
from core.runtime import Runtime

log = logging.getLogger(__name__)


async def _respond(respond: AsyncRespond, **message: Any) -> None:
    """Answer through the command's response_url; a failure to deliver is logged, not raised
    (the command has run; only the answer is lost)."""
    try:
        await respond(**message)
    except Exception as exc:
        log.warning("/infraai answer not delivered: %s", type(exc).__name__)


async def _ask(
    runtime: Runtime, client: AsyncWebClient, command: dict[str, Any], user: str, question: str
) -> bool:
    """`/infraai ask …`: the question as a root message, answered in its thread. False when
    that cannot be (no channel, the bot not in it): the answer then comes as the reply."""
    channel = payloads.text_field(command, "channel_id")
    if not question.strip() or channel is None:
        return False
    team = payloads.text_field(command, "team_id") or "-"
    return await ask_at_the_root(
        runtime, client, team=team, channel=channel, user=user, question=question
    )


async def _post_query(
    client: AsyncWebClient, command: dict[str, Any], user: str, reply: QueryResult
) -> bool:
    """`/infraai query`: the table in the channel and the graph in its thread; False when the
    bot cannot post there (the reply is then ephemeral, without the graph)."""
    from bot.slack.query import post_query

    channel = payloads.text_field(command, "channel_id")
    if channel is None:
        return False
    return await post_query(client, channel=channel, user=user, reply=reply)


def _ask_hook(runtime: Runtime, command: dict[str, Any], user: str) -> Any:
    """The fallback of `/infraai ask` (and `ask` with nothing after it): in a conversation
    per person and channel, answered through the response_url."""
    from core.agent.hook import ask_hook
    from core.agent.tools import ToolContext

    team = payloads.text_field(command, "team_id") or "-"
    channel = payloads.text_field(command, "channel_id")
    conversation = f"{team}:{channel or '-'}:{user}:ask"
    return ask_hook(runtime, ToolContext(user=user, conversation=conversation, channel=channel))


def _scan_thread(client: AsyncWebClient, command: dict[str, Any], user: str) -> Any:
    """`/infraai scan`: progress and summary in a thread of the channel (None: no channel)."""
    from bot.slack.scan_thread import ThreadProgress

    channel = payloads.text_field(command, "channel_id")
    return ThreadProgress(client, channel, user) if channel is not None else None


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def answer(
        command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        if not payloads.is_http_url(command.get("response_url")):
            log.warning("/infraai without a response_url: nowhere to answer, not run")
            return
        user = payloads.text_field(command, "user_id")
        if user is None:
            await _respond(
                respond, text="That command came without a user.", response_type="ephemeral"
            )
            return
        try:
            # Slack escapes what people type; commands want it as typed (a policy's YAML may
            # hold `>` or `&`). The reply is escaped again when it is rendered.
            text = mrkdwn.unescape(payloads.text_field(command, "text") or "")
            verb, _, rest = text.strip().partition(" ")
            if verb.lower() == "ask" and await _ask(runtime, client, command, user, rest):
                return
            ask = _ask_hook(runtime, command, user) if verb.lower() == "ask" else None
            scan = _scan_thread(client, command, user) if verb.lower() == "scan" else None
            reply = await run_command(runtime, user, text, ask=ask, scan_progress=scan)
            if scan is not None and await scan.finish(reply):
                return  # the summary is in the scan's thread
            if isinstance(reply, QueryResult) and await _post_query(client, command, user, reply):
                return
        except Exception:
            # A bug, not the input: the trace is for us, without what was typed (it may
            # hold a pasted secret).
            log.exception("/infraai failed")
            await _respond(
                respond,
                text="Something went wrong running that command; it has been logged.",
                response_type="ephemeral",
            )
            return
        # ---- Grafana (issue 9): a panel's picture goes to the channel, in a thread
        if isinstance(reply, Dashboards) and reply.found.image is not None:
            channel = payloads.text_field(command, "channel_id")
            if channel and await post_panel_picture(
                client, channel=channel, user=user, found=reply.found
            ):
                await _respond(respond, text="📊 Posted in the channel.", response_type="ephemeral")
                return
        text, blocks = render_reply(reply)
        scope = "in_channel" if reply.public else "ephemeral"
        await _respond(respond, text=text, blocks=blocks, response_type=scope)
        if runtime.drain is not None:
            runtime.drain.wake()

    @app.command("/infraai")
    async def infraai_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        in_background(runtime, answer(command, respond, client), "/infraai")
