"""Conversation memory in `chat_messages`: loaded each turn, bounded, and written back.

Per conversation (Slack team + channel + thread, a DM, a console session): the user's turns,
the answers, the tool calls and their results. It is also the readable record of what the
assistant saw and said. Loading is bounded by turns and by an estimate of tokens
(`trim_messages`), keeping the newest and starting on a user turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    ToolMessage,
    trim_messages,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import ChatMessage
from core.text import storable

MAX_ROWS = 60


def approximate_tokens(messages: Sequence[Any]) -> int:
    """About four characters a token: enough to bound a prompt, with no tokenizer to load."""
    total = 0
    for message in messages:
        content = message.content if isinstance(message.content, str) else str(message.content)
        total += len(content) // 4 + 4
        for call in getattr(message, "tool_calls", None) or []:
            total += len(str(call.get("args", ""))) // 4 + 8
    return total


async def load(session: AsyncSession, conversation: str, max_tokens: int) -> list[AnyMessage]:
    rows = (
        await session.scalars(
            sa.select(ChatMessage)
            .where(ChatMessage.conversation == conversation)
            .order_by(ChatMessage.id.desc())
            .limit(MAX_ROWS)
        )
    ).all()
    messages = [_message(row) for row in reversed(rows)]
    trimmed = trim_messages(
        messages,
        max_tokens=max_tokens,
        token_counter=approximate_tokens,
        strategy="last",
        start_on="human",
        allow_partial=False,
    )
    return list(trimmed)  # type: ignore[arg-type]


def _message(row: ChatMessage) -> AnyMessage:
    if row.role == "user":
        return HumanMessage(row.content)
    if row.role == "tool":
        call = (row.tool_calls or [{}])[0]
        return ToolMessage(row.content, tool_call_id=call.get("id", ""), name=call.get("name"))
    calls = [
        {"name": c["name"], "args": c.get("args", {}), "id": c.get("id", ""), "type": "tool_call"}
        for c in row.tool_calls or []
    ]
    return AIMessage(row.content, tool_calls=calls)


def rows_for(
    conversation: str, user: str | None, messages: Sequence[AnyMessage]
) -> list[ChatMessage]:
    """The new messages of a turn as rows (the user's question first), with what no database
    column can hold (NUL, lone surrogates: a model can answer them too) replaced."""
    return [_storable_row(row) for row in _rows(conversation, user, messages)]


def _storable_row(row: ChatMessage) -> ChatMessage:
    row.content = storable(row.content)
    row.tool_calls = storable(row.tool_calls)
    return row


def _rows(conversation: str, user: str | None, messages: Sequence[AnyMessage]) -> list[ChatMessage]:
    rows = []
    for message in messages:
        if isinstance(message, HumanMessage):
            rows.append(
                ChatMessage(
                    conversation=conversation, role="user", user=user, content=str(message.content)
                )
            )
        elif isinstance(message, ToolMessage):
            rows.append(
                ChatMessage(
                    conversation=conversation,
                    role="tool",
                    content=str(message.content),
                    tool_calls=[{"id": message.tool_call_id, "name": message.name}],
                )
            )
        elif isinstance(message, AIMessage):
            calls = [
                {"id": c.get("id"), "name": c["name"], "args": c.get("args", {})}
                for c in message.tool_calls
            ] or None
            rows.append(
                ChatMessage(
                    conversation=conversation,
                    role="assistant",
                    content=str(message.content),
                    tool_calls=calls,
                )
            )
    return rows


async def remember(session: AsyncSession, conversation: str, role: str, content: str) -> None:
    """Add one message to a conversation (a job's result, so a follow-up sees it)."""
    session.add(ChatMessage(conversation=conversation, role=role, content=content))
