"""job_logs.heartbeat_at: detect workers that died mid-job

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_logs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_job_logs_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("job_logs") as batch:
        batch.drop_index("ix_job_logs_status")
        batch.drop_column("heartbeat_at")
