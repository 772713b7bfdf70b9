"""The schema. Table and column names are a contract: operators query them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import JSONType, UTCDateTime, utcnow

# Statuses in which a proposal still holds its dedup key: at most one such proposal per key.
OPEN_PROPOSAL_STATUSES = ("pending", "approved", "running")
PROPOSAL_STATUSES = (
    "pending",
    "approved",
    "running",
    "succeeded",
    "failed",
    "denied",
    "expired",
    "superseded",
    "rate_limited",
)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)
    alertname: Mapped[str] = mapped_column(sa.String(255), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    generator_url: Mapped[str | None] = mapped_column(sa.Text)
    first_seen: Mapped[datetime] = _created()
    last_seen: Mapped[datetime] = _created()
    times_received: Mapped[int] = mapped_column(default=1)


class Policy(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    priority: Mapped[int] = mapped_column(default=100)
    enabled: Mapped[bool] = mapped_column(default=True)
    matchers: Mapped[list[str]] = mapped_column(JSONType)
    action: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    approval: Mapped[str] = mapped_column(sa.String(16), default="required")
    approvers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channel: Mapped[str | None] = mapped_column(sa.String(64))
    cooldown_seconds: Mapped[int] = mapped_column(default=0)
    max_runs_per_hour: Mapped[int | None] = mapped_column()
    dry_run: Mapped[bool] = mapped_column(default=False)
    continue_matching: Mapped[bool] = mapped_column(default=False)
    allow_scale_to_zero: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(sa.String(128), default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Proposal(Base):
    __tablename__ = "proposals"
    __table_args__ = (
        # The open-dedup guarantee lives in the database, not in a read-then-write: two
        # concurrent deliveries of one alert cannot both hold an open proposal for a key.
        sa.Index(
            "uq_proposals_open_dedup_key",
            "dedup_key",
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'approved', 'running')"),
            sqlite_where=sa.text("status IN ('pending', 'approved', 'running')"),
        ),
        sa.Index("ix_proposals_status", "status"),
        sa.Index("ix_proposals_policy_created", "policy_id", "created_at"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in PROPOSAL_STATUSES) + ")",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # alert / chat / command
    alert_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    # The alert's startsAt when proposed: identifies the firing episode, so redeliveries of
    # one episode propose nothing new whatever the clocks of Prometheus and InfraAI say.
    alert_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("policies.id", ondelete="SET NULL"))
    policy_name: Mapped[str | None] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    target: Mapped[str] = mapped_column(sa.Text, default="")
    risk: Mapped[str] = mapped_column(sa.String(8), default="write")
    approval: Mapped[str] = mapped_column(sa.String(16), default="required")
    approvers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    requested_by: Mapped[str] = mapped_column(sa.String(128), default="")
    decided_by: Mapped[str | None] = mapped_column(sa.String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slack_channel: Mapped[str | None] = mapped_column(sa.String(64))
    slack_ts: Mapped[str | None] = mapped_column(sa.String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(sa.String(32))
    dedup_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    # A chat proposal's conversation ("<team>:<channel>:<thread>"): its job's result joins it.
    conversation: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class JobLog(Base):
    __tablename__ = "job_logs"
    __table_args__ = (sa.Index("ix_job_logs_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(
        sa.ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(128))
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration: Mapped[float | None] = mapped_column(sa.Float)  # seconds
    output: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    worker_name: Mapped[str | None] = mapped_column(sa.String(255))
    # Refreshed while the action runs; a stale heartbeat on a running job means the worker
    # died, and the sweep records the proposal as failed ("worker lost").
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hostname: Mapped[str | None] = mapped_column(sa.String(255))
    mac: Mapped[str | None] = mapped_column(sa.String(32))
    vendor: Mapped[str | None] = mapped_column(sa.String(255))
    os_guess: Mapped[str | None] = mapped_column(sa.String(255))
    open_ports: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    up: Mapped[bool] = mapped_column(default=True)
    first_seen: Mapped[datetime] = _created()
    last_seen: Mapped[datetime] = _created()


class Scan(Base):
    """One discovery scan: who asked for what, and what changed in `assets` because of it
    (the "what changed" summary and the scan history)."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(sa.String(255))  # as typed: an address, CIDR or name
    ports: Mapped[str | None] = mapped_column(sa.String(200))
    requested_by: Mapped[str] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16))  # running, done, failed
    addresses: Mapped[int] = mapped_column(default=0)  # how many were scanned
    hosts_up: Mapped[int] = mapped_column(default=0)
    # {"new_hosts": [...], "opened": {addr: [ports]}, "closed": {...}, "down": [...]}
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (sa.Index("ix_chat_messages_conversation_id", "conversation", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation: Mapped[str] = mapped_column(sa.String(128))  # "<team>:<channel>:<thread ts>"
    role: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.Text, default="")
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    user: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # One proposal's trail (the API's timeline) is a range of this index.
    __table_args__ = (sa.Index("ix_audit_events_subject_id", "subject", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(sa.String(128))
    verb: Mapped[str] = mapped_column(sa.String(64), index=True)
    subject: Mapped[str] = mapped_column(sa.String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Notification(Base):
    """The notifier's outbox: what must reach the chat platform, written in the same
    transaction as the change it announces so an outage delays messages and never drops them.
    Messages are rendered from the proposal's state at send time, so updates coalesce."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_pending", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))  # proposal / update / thread / text
    proposal_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str | None] = mapped_column(sa.String(64))
    group_key: Mapped[str | None] = mapped_column(sa.String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Switch(Base):
    """Named runtime switches that must survive restarts (the global pause of auto policies)."""

    __tablename__ = "switches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    value: Mapped[bool] = mapped_column(default=False)
    updated_by: Mapped[str] = mapped_column(sa.String(128), default="")
    updated_at: Mapped[datetime] = _created()
