"""The audit trail: append-only rows, written in the transaction of the change they record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuditEvent
from core.db.types import utcnow


def audit_row(actor: str, verb: str, subject: str, **detail: Any) -> dict[str, Any]:
    """One audit event as a row dict, for bulk inserts."""
    return {"at": utcnow(), "actor": actor, "verb": verb, "subject": subject, "detail": detail}


def record(session: AsyncSession, actor: str, verb: str, subject: str, **detail: Any) -> None:
    """Add an audit event to the session's transaction (it commits with the change)."""
    session.add(AuditEvent(**audit_row(actor, verb, subject, **detail)))
