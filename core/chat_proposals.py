"""Proposals asked for in conversation: the assistant's only way to a change.

The same rules as an alert's proposal: the action and its params validated against the
catalogue, one open proposal per remediation (the partial unique index on `dedup_key`), an
expiry, the approvers, an audit event and an outbox row in the same transaction, so the
Approve / Deny message appears like any other. A chat proposal always needs a person's
approval — no policy made it, so no `auto` guard rails apply — and nothing runs until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.actions.catalogue import UnknownAction, describe_errors, get_action
from core.alerts.ingest_sql import OPEN_DEDUP_PREDICATE
from core.audit import record
from core.db.dialect import upsert
from core.db.models import OPEN_PROPOSAL_STATUSES, Notification, Proposal
from core.db.types import utcnow
from core.policy.engine import dedup_key

SOURCE = "chat"


class ProposalRefused(ValueError):
    """The request cannot become a proposal (unknown or read-only action, bad params)."""


@dataclass(frozen=True)
class ChatProposal:
    id: int
    action: str
    target: str
    approvers: tuple[str, ...]
    existing: bool  # an open proposal for the same remediation already existed


async def propose(
    session: AsyncSession,
    *,
    action: str,
    params: dict[str, Any],
    requested_by: str,
    reason: str,
    channel: str | None,
    conversation: str | None,
    approvers: tuple[str, ...],
    ttl: timedelta,
    dry_run: bool,
) -> ChatProposal:
    """Create (or find the open) proposal; the caller's transaction commits it."""
    try:
        spec = get_action(action)
    except UnknownAction:
        raise ProposalRefused(f"unknown action {action!r}") from None
    if spec.risk != "write":
        raise ProposalRefused(f"{action} only reads: use the read tools instead")
    try:
        validated = spec.validate(params)
    except ValidationError as exc:
        raise ProposalRefused(f"bad params for {action}: {describe_errors(exc)}") from None
    values = validated.model_dump(mode="json")
    key = dedup_key(SOURCE, action, values)
    now = utcnow()
    target = spec.target(validated)
    row = {
        "source": SOURCE,
        "action": action,
        "params": values,
        "target": target,
        "risk": spec.risk,
        "approval": "required",
        "approvers": [],  # the default approvers decide (INFRAAI_APPROVERS)
        "dry_run": dry_run,
        "status": "pending",
        "status_reason": reason[:500] or None,
        "requested_by": requested_by,
        "expires_at": now + ttl,
        "dedup_key": key,
        "slack_channel": channel,
        "conversation": (conversation or "")[:255] or None,
        "created_at": now,
        "updated_at": now,
    }
    statement = (
        upsert(session, Proposal.__table__)
        .values(row)
        .on_conflict_do_nothing(
            index_elements=["dedup_key"],
            index_where=OPEN_DEDUP_PREDICATE,
        )
        .returning(Proposal.id)
    )
    for _attempt in range(3):
        created = await session.scalar(statement)
        if created is not None:
            break
        existing = await session.scalar(
            sa.select(Proposal.id).where(
                Proposal.dedup_key == key, Proposal.status.in_(OPEN_PROPOSAL_STATUSES)
            )
        )
        if existing is not None:
            return ChatProposal(existing, action, target, approvers, existing=True)
        # The open one closed in between: try the insert again.
    else:
        raise ProposalRefused("the proposal is changing too fast; ask again")
    record(
        session,
        requested_by,
        "proposal.created",
        f"proposal/{created}",
        source=SOURCE,
        action=action,
        params=values,
        reason=reason[:500],
    )
    session.add(
        Notification(
            kind="proposal",
            proposal_id=created,
            channel=channel,
            group_key=None,
            payload={},
            attempts=0,
            created_at=now,
        )
    )
    return ChatProposal(created, action, target, approvers, existing=False)
