"""Approvals and denials: who may decide, and exactly one decision per proposal.

pending → approved is one conditional UPDATE (`… WHERE id = :id AND status = 'pending' AND
not expired`), so any number of concurrent clicks yield one winner and one enqueue. Every
attempt — allowed, refused, too late — leaves an audit event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import record
from core.db.models import Proposal
from core.db.types import utcnow
from core.execution.executor import Executor
from core.outbox import announce_in_thread, announce_update
from core.text import Person, words

log = logging.getLogger(__name__)


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def is_user_id(value: str) -> bool:
    """A person's Slack id (`U…`, or `W…` on Enterprise Grid)."""
    return _USER_ID.fullmatch(value) is not None


def is_group_id(value: str) -> bool:
    """A user group's Slack id (`S…`): it stands for its members, never for a person."""
    return _GROUP_ID.fullmatch(value) is not None


def listed_users(approvers: Sequence[str]) -> frozenset[str]:
    """The approvers that are people; a clicker is compared with these only."""
    return frozenset(a for a in approvers if is_user_id(a))


class Authorizer(Protocol):
    async def may_approve(self, user: str, approvers: Sequence[str]) -> bool:
        """Whether `user` is one of `approvers` (user IDs, or members of group IDs)."""
        ...


class ListAuthorizer:
    """Approvers given as user IDs; user-group IDs resolved by `members` when given.

    The clicker must be a user id and is compared with user ids only: a payload naming a
    group id as its user is not a member of that group (nor of any other).
    """

    def __init__(self, members: dict[str, set[str]] | None = None) -> None:
        self._members = members or {}

    async def may_approve(self, user: str, approvers: Sequence[str]) -> bool:
        if not is_user_id(user):
            return False
        return user in listed_users(approvers) or any(
            user in self._members.get(a, ()) for a in approvers if is_group_id(a)
        )


class TrustedAuthorizer:
    """The console: the person at the terminal runs InfraAI and may decide."""

    async def may_approve(self, user: str, approvers: Sequence[str]) -> bool:
        return True


@dataclass(frozen=True)
class DecisionOutcome:
    ok: bool
    message: str  # may be `core.text.Words`, naming who decided
    proposal_id: int
    status: str | None = None
    execution: str | None = None


_TOO_LATE = {
    "approved": "already approved by {who}",
    "running": "already approved by {who} and running",
    "succeeded": "already approved by {who} and done",
    "failed": "already approved by {who}; it failed",
    "denied": "already denied by {who}",
    "expired": "expired before anyone decided",
    "superseded": "the alert resolved before approval",
    "rate_limited": "rate limited: it will not run",
}


class Approvals:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        executor: Executor,
        authorizer: Authorizer,
        default_approvers: Sequence[str],
    ) -> None:
        self._sessions = sessions
        self._executor = executor
        self.authorizer = authorizer
        self._default_approvers = tuple(default_approvers)

    async def approvers_for(self, proposal_id: int) -> tuple[str, ...] | None:
        async with self._sessions() as session:
            approvers = await session.scalar(
                sa.select(Proposal.approvers).where(Proposal.id == proposal_id)
            )
        if approvers is None:
            return None
        return tuple(approvers) or self._default_approvers

    async def decide(
        self, proposal_id: int, user: str, approve: bool, *, now: datetime | None = None
    ) -> DecisionOutcome:
        now = now or utcnow()
        verb = "approve" if approve else "deny"
        approvers = await self.approvers_for(proposal_id)
        if approvers is None:
            return DecisionOutcome(False, f"There is no proposal #{proposal_id}.", proposal_id)
        if not await self.authorizer.may_approve(user, approvers):
            async with self._sessions() as session, session.begin():
                record(
                    session,
                    user,
                    "approval.refused",
                    f"proposal/{proposal_id}",
                    attempted=verb,
                    approvers=list(approvers),
                )
            listed = ", ".join(approvers) if approvers else "nobody (set INFRAAI_APPROVERS)"
            return DecisionOutcome(
                False,
                f"You may not {verb} proposal #{proposal_id}: approvers are {listed}.",
                proposal_id,
            )
        new_status = "approved" if approve else "denied"
        async with self._sessions() as session, session.begin():
            won = (
                await session.execute(
                    sa.update(Proposal)
                    .where(
                        Proposal.id == proposal_id,
                        Proposal.status == "pending",
                        sa.or_(Proposal.expires_at.is_(None), Proposal.expires_at > now),
                    )
                    .values(status=new_status, decided_by=user, decided_at=now, updated_at=now)
                    .returning(Proposal.slack_channel)
                )
            ).first()
            if won is None:
                outcome = await self._too_late(session, proposal_id, user, verb, now)
                return outcome
            record(session, user, f"proposal.{new_status}", f"proposal/{proposal_id}")
            announce_update(session, proposal_id, won.slack_channel, reason=new_status)
        if not approve:
            return DecisionOutcome(True, f"Denied proposal #{proposal_id}.", proposal_id, "denied")
        try:
            execution = await self._executor.enqueue(proposal_id)
        except Exception as exc:
            # Approved and recorded; the maintenance sweep enqueues it when the queue is back.
            log.warning("enqueue of proposal %s failed: %s", proposal_id, exc)
            execution = "approved; the queue is unavailable, it will be queued when it is back"
        return DecisionOutcome(
            True,
            f"Approved proposal #{proposal_id} · {execution}.",
            proposal_id,
            "approved",
            execution,
        )

    async def _too_late(
        self, session: AsyncSession, proposal_id: int, user: str, verb: str, now: datetime
    ) -> DecisionOutcome:
        row = (
            await session.execute(
                sa.select(
                    Proposal.status,
                    Proposal.decided_by,
                    Proposal.expires_at,
                    Proposal.slack_channel,
                ).where(Proposal.id == proposal_id)
            )
        ).one()
        status = row.status
        if status == "pending" and row.expires_at is not None and row.expires_at <= now:
            await expire(session, [proposal_id], now)
            status = "expired"
        record(
            session,
            user,
            "approval.too_late",
            f"proposal/{proposal_id}",
            attempted=verb,
            status=status,
        )
        before, who, after = _TOO_LATE.get(status, status).partition("{who}")
        if who:
            decider = Person(row.decided_by or "someone")
            message = words(f"Proposal #{proposal_id}: {before}", decider, f"{after}.")
        else:
            message = words(f"Proposal #{proposal_id}: {before}.")
        return DecisionOutcome(False, message, proposal_id, status)


async def expire(session: AsyncSession, proposal_ids: list[int], now: datetime) -> list[int]:
    """Pending → expired for these ids (conditional), with audit and message updates."""
    rows = (
        await session.execute(
            sa.update(Proposal)
            .where(Proposal.id.in_(proposal_ids), Proposal.status == "pending")
            .values(status="expired", status_reason="nobody decided in time", updated_at=now)
            .returning(Proposal.id, Proposal.slack_channel)
        )
    ).all()
    for row in rows:
        record(session, "sweeper", "proposal.expired", f"proposal/{row.id}")
        announce_update(session, row.id, row.slack_channel, reason="expired")
        announce_in_thread(
            session,
            row.id,
            row.slack_channel,
            "⌛ Expired: nobody decided in time.",
            status="expired",
        )
    return [row.id for row in rows]
