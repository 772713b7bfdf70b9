"""Writing to the notifier's outbox, inside the transaction of the change it announces."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Notification
from core.db.types import utcnow


def update_row(proposal_id: int, channel: str | None, **info: Any) -> dict[str, Any]:
    """An "update" outbox row as a row dict, for bulk inserts (see `announce_update`)."""
    return {
        "kind": "update",
        "proposal_id": proposal_id,
        "channel": channel,
        "payload": info,
        "attempts": 0,
        "created_at": utcnow(),
    }


def thread_row(proposal_id: int, channel: str | None, text: str, **info: Any) -> dict[str, Any]:
    """A "thread" outbox row as a row dict, for bulk inserts (see `announce_in_thread`)."""
    return {
        "kind": "thread",
        "proposal_id": proposal_id,
        "channel": channel,
        "payload": {"text": text, **info},
        "attempts": 0,
        "created_at": utcnow(),
    }


def announce_update(
    session: AsyncSession, proposal_id: int, channel: str | None, **info: Any
) -> None:
    """Re-render the proposal's message from its current state (buttons go when decided)."""
    session.add(Notification(**update_row(proposal_id, channel, **info)))


def announce_in_thread(
    session: AsyncSession, proposal_id: int, channel: str | None, text: str, **info: Any
) -> None:
    """A reply in the proposal's thread (job results, expiry, worker lost)."""
    session.add(Notification(**thread_row(proposal_id, channel, text, **info)))
