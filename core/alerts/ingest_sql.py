"""The SQL of alert ingestion, per backend.

Each PostgreSQL statement has one SQL text whatever the row count — rows travel as one JSON
document through `jsonb_populate_recordset`, lists as arrays — so SQLAlchemy compiles it once
and asyncpg prepares it once per connection. SQLite gets plain multi-row statements with the
same effect. `core.alerts.ingest` decides what to write; this module says how.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.models import OPEN_PROPOSAL_STATUSES, Alert, AuditEvent, Notification, Proposal

RUN_STATUSES = ("pending", "approved", "running", "succeeded", "failed")
ACTOR = "alertmanager"

# The partial unique index's predicate, as literal SQL. PostgreSQL picks the arbiter index of
# ON CONFLICT while planning: with bound parameters (`status IN ($1, $2, $3)`) it can prove
# the predicate only in a custom plan, so from the sixth execution of a cached prepared
# statement (the generic plan) the insert failed with "no unique or exclusion constraint
# matching the ON CONFLICT specification".
OPEN_DEDUP_PREDICATE = sa.text(
    "status IN (" + ", ".join(f"'{s}'" for s in OPEN_PROPOSAL_STATUSES) + ")"
)

ALERT_COLUMNS = (
    "fingerprint",
    "alertname",
    "status",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "generator_url",
    "first_seen",
    "last_seen",
    "times_received",
)
PROPOSAL_COLUMNS = (
    "source",
    "alert_id",
    "alert_starts_at",
    "policy_id",
    "policy_name",
    "action",
    "params",
    "target",
    "risk",
    "approval",
    "approvers",
    "dry_run",
    "status",
    "status_reason",
    "requested_by",
    "decided_by",
    "decided_at",
    "expires_at",
    "dedup_key",
    "slack_channel",
    "created_at",
    "updated_at",
)
ALERTS = cast(sa.Table, Alert.__table__)
PROPOSALS = cast(sa.Table, Proposal.__table__)
AUDIT_EVENTS = cast(sa.Table, AuditEvent.__table__)
NOTIFICATIONS = cast(sa.Table, Notification.__table__)


def _in_list(pg: bool, column: Any, name: str) -> Any:
    """`column IN (…list…)`, on PostgreSQL with one SQL text whatever the list's length.

    Not `column = ANY(:array)`: with a parameter (a generic plan) PostgreSQL cannot hash the
    array and compares every row with every element — 2,000 proposals × 200 dedup keys took
    20 ms per batch. `IN (SELECT unnest(:array))` is a semi-join (index or hash), or a
    hashed subplan inside an OR.
    """
    if pg:
        array = sa.bindparam(name, type_=postgresql.ARRAY(column.type, dimensions=1))
        return column.in_(sa.select(sa.func.unnest(array)))
    return column.in_(sa.bindparam(name, expanding=True))


def _any(pg: bool, column: Any, name: str) -> Any:
    """`column = ANY(:array)`: for short lists of integers, where the index on `column`
    takes the array directly and no join order can go wrong."""
    if pg:
        array = sa.bindparam(name, type_=postgresql.ARRAY(column.type, dimensions=1))
        return column == sa.any_(array)
    return column.in_(sa.bindparam(name, expanding=True))


def _recordset_insert(table: sa.Table, columns: Sequence[str]) -> Any:
    """PostgreSQL: `INSERT … SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)`.

    The rows travel as one JSON document: one text parameter, one `json.dumps` in C, where
    arrays per column cost a Python type check and conversion per value on the way out.
    """
    rows = sa.func.jsonb_populate_recordset(
        sa.literal_column(f"NULL::{table.name}"),
        sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSONB),
    ).table_valued(*columns)
    return postgresql.insert(table).from_select(
        list(columns), sa.select(*[rows.c[c] for c in columns])
    )


def iso(value: datetime | None) -> Any:
    return value.isoformat() if value is not None else None


def same(value: datetime | None) -> Any:
    return value


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def alert_upsert(insert: Any) -> Any:
    table = ALERTS
    excluded, current = insert.excluded, table.c
    # A retried notification from an episode already over (older startsAt, or a late
    # "firing" for an episode already resolved) must not reopen it.
    stale = sa.or_(
        excluded.starts_at < current.starts_at,
        sa.and_(
            excluded.starts_at == current.starts_at,
            current.status == "resolved",
            excluded.status == "firing",
        ),
    )
    kept = ("status", "labels", "annotations", "starts_at", "ends_at", "generator_url")
    updates: dict[str, Any] = {
        name: sa.case((stale, current[name]), else_=excluded[name]) for name in kept
    }
    updates["alertname"] = excluded.alertname
    updates["last_seen"] = excluded.last_seen
    updates["times_received"] = current.times_received + excluded.times_received
    return insert.on_conflict_do_update(index_elements=["fingerprint"], set_=updates).returning(
        current.id, current.fingerprint, current.status, current.starts_at
    )


def proposal_insert(insert: Any) -> Any:
    table = PROPOSALS
    return insert.on_conflict_do_nothing(
        index_elements=["dedup_key"], index_where=OPEN_DEDUP_PREDICATE
    ).returning(table.c.id, table.c.dedup_key, table.c.status)


def _plain(insert: Any) -> Any:
    return insert


# PostgreSQL: everything a batch writes after its decisions, in one statement (one round
# trip instead of four): the new proposals, the pending ones their alerts' resolution
# supersedes, the audit events and the outbox rows of both. The audit and outbox rows are the
# ones the SQLite path builds in Python (`Ingestor._write_rows`); a proposal the unique index
# refuses (a concurrent delivery holds its key) gets neither, as there.
PG_WRITE = sa.text(
    f"""
WITH proposed AS (
    INSERT INTO proposals ({", ".join(PROPOSAL_COLUMNS)})
    SELECT {", ".join("r." + c for c in PROPOSAL_COLUMNS)}
    FROM jsonb_populate_recordset(NULL::proposals, CAST(:proposals AS jsonb)) AS r
    ON CONFLICT (dedup_key) WHERE {OPEN_DEDUP_PREDICATE.text} DO NOTHING
    RETURNING id, dedup_key, status, policy_name, action, params, status_reason, slack_channel,
              alert_id
), superseded AS (
    UPDATE proposals
    SET status = 'superseded', status_reason = 'alert resolved before approval',
        updated_at = CAST(:now AS timestamptz)
    WHERE alert_id = ANY(CAST(:resolved AS integer[])) AND status = 'pending'
    RETURNING id
), audited AS (
    INSERT INTO audit_events (at, actor, verb, subject, detail)
    SELECT r.at, r.actor, r.verb, r.subject, r.detail
    FROM jsonb_populate_recordset(NULL::audit_events, CAST(:audits AS jsonb)) AS r
    UNION ALL
    SELECT CAST(:now AS timestamptz), '{ACTOR}',
           CASE p.status WHEN 'rate_limited' THEN 'proposal.rate_limited'
                         WHEN 'approved' THEN 'proposal.auto_approved'
                         ELSE 'proposal.created' END,
           'proposal/' || p.id,
           jsonb_build_object('policy', p.policy_name, 'action', p.action,
                              'params', p.params, 'reason', p.status_reason)
    FROM proposed AS p
    UNION ALL
    SELECT CAST(:now AS timestamptz), '{ACTOR}', 'proposal.superseded', 'proposal/' || s.id,
           '{{"reason": "alert resolved"}}'::jsonb
    FROM superseded AS s
), notified AS (
    INSERT INTO notifications (kind, proposal_id, channel, group_key, payload, attempts,
                               created_at)
    SELECT 'proposal', p.id, p.slack_channel, p.policy_name, '{{}}'::jsonb, 0,
           CAST(:now AS timestamptz)
    FROM proposed AS p
    UNION ALL
    SELECT 'update', s.id, NULL, NULL, '{{"reason": "resolved"}}'::jsonb, 0,
           CAST(:now AS timestamptz)
    FROM superseded AS s
    UNION ALL  -- after every proposal row: the graphs never delay a proposal's message
    SELECT 'graph', p.id, p.slack_channel, NULL, '{{}}'::jsonb, 0, CAST(:now AS timestamptz)
    FROM proposed AS p JOIN alerts AS a ON a.id = p.alert_id
    WHERE a.generator_url LIKE '%g0.expr=%'
)
SELECT 'proposed' AS kind, id, dedup_key, status FROM proposed
UNION ALL
SELECT 'superseded', id, NULL, NULL FROM superseded
"""
)


class Statements:
    """The ingest's statements for one backend, built once so they compile once."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        alerts, proposals = ALERTS, PROPOSALS
        p = proposals.c
        self.previous = sa.select(alerts.c.fingerprint, alerts.c.status, alerts.c.starts_at).where(
            _in_list(pg, alerts.c.fingerprint, "fingerprints")
        )
        self.history = sa.select(
            p.id, p.dedup_key, p.alert_id, p.alert_starts_at, p.status, p.created_at
        ).where(
            _in_list(pg, p.dedup_key, "keys"),
            sa.or_(
                OPEN_DEDUP_PREDICATE,  # literal: an expanding IN costs a re-render per call
                p.created_at >= sa.bindparam("horizon"),
                _in_list(pg, p.alert_id, "alert_ids"),
            ),
        )
        self.runs = (
            sa.select(p.policy_id, sa.func.count())
            .where(
                _any(pg, p.policy_id, "policy_ids"),
                p.created_at >= sa.bindparam("since"),
                p.status.in_(RUN_STATUSES),
            )
            .group_by(p.policy_id)
        )
        self.supersede = (
            sa.update(proposals)
            .where(_any(pg, p.alert_id, "alert_ids"), p.status == "pending")
            .values(
                status="superseded",
                status_reason="alert resolved before approval",
                updated_at=sa.bindparam("now"),
            )
            .returning(p.id)
        )
        self.paused = sa.text("SELECT value FROM switches WHERE name = :n")
        # PostgreSQL upserts the alerts from one JSON document (and writes proposal, audit
        # and outbox rows in `PG_WRITE`); SQLite inserts a multi-row VALUES built per call.
        self.alert_upsert: Any = (
            alert_upsert(_recordset_insert(alerts, ALERT_COLUMNS)) if pg else None
        )

    async def upsert_alerts(self, connection: AsyncConnection, document: str) -> Sequence[Any]:
        """PostgreSQL: the alert upsert from a JSON document of rows (ALERT_COLUMNS)."""
        result = await connection.execute(self.alert_upsert, {"rows": document})
        return result.all()

    async def insert(
        self,
        connection: AsyncConnection,
        table: sa.Table,
        rows: list[dict[str, Any]],
        finish: Callable[[Any], Any] = _plain,
    ) -> Sequence[Any]:
        """SQLite: insert `rows` in one statement; the rows RETURNING gives (none without)."""
        if finish is _plain:
            result = await connection.execute(table.insert(), rows)
        else:
            result = await connection.execute(finish(sqlite.insert(table).values(rows)))
        return result.all() if result.returns_rows else []
