"""audit_events (subject, id): a proposal's audit trail is one index range

The API's incident timeline reads every event of one proposal (`subject = 'proposal/N'`);
without an index that is a scan of the whole append-only table, which only grows.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_subject_id", "audit_events", ["subject", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_subject_id", table_name="audit_events")
