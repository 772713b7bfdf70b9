"""The `ask` command's back-end for the surfaces, kept light to import.

LangChain and LangGraph take about a second to import: the surfaces import this module on
the event loop, and the assistant itself is loaded in a thread on the first question
(`Runtime.assistant()`), so no Slack ack waits for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.agent.tools import ToolContext
    from core.runtime import Runtime


def ask_hook(runtime: Runtime, context: ToolContext) -> Any:
    """The assistant in `context`'s conversation. The process's one Assistant answers in
    every conversation: the memory is in chat_messages, the conversation comes with each
    question."""
    from core.commands import Invocation, Reply, Text

    async def ask(inv: Invocation) -> Reply:
        assistant = await runtime.assistant()
        answer = await assistant.ask(inv.raw, context)
        return Text(answer.text)

    return ask
