"""Alert ingestion: one transaction from webhook payloads to recorded proposals.

In one transaction the alerts are upserted by fingerprint, firing ones are evaluated against
the policies, proposals are created under the dedup / cooldown / hourly-cap rules, resolved
alerts supersede the pending proposals they opened, and audit events and outbox rows are
written. The caller answers Alertmanager only after that commit, so nothing is lost; the
rules below make redelivery harmless, so nothing is doubled:

* one open proposal per dedup key (policy + action + rendered params) — enforced by a
  partial unique index, not by a read-then-write;
* one proposal per firing episode (fingerprint + startsAt) and dedup key, so a retried or
  repeated notification proposes nothing new;
* between episodes, the policy's cooldown (per dedup key) and hourly cap (per policy) turn a
  would-be proposal into a recorded `rate_limited` one that is shown but never run.

Cost (bench/ingest.py measures it). A batch of deliveries (group commit) is a few statements
whatever its size: the alert upsert; the proposal history, only for alerts that might
propose; on PostgreSQL one statement for everything else it writes (proposals, supersedes,
audit events, outbox rows). Each PostgreSQL statement has one SQL text whatever the row
count — rows travel as one JSON document through `jsonb_populate_recordset`, lists as arrays
— so SQLAlchemy compiles it once and asyncpg prepares it once per connection. For the
repeats Alertmanager sends at every group_interval, the process remembers what follows from
an alert's content alone (its decisions under the current policies, its serialised row) and,
once committed, which firing episodes already have their proposal — an append-only fact —
so remembering changes no outcome.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.actions.catalogue import ActionSpec
from core.alerts.ingest_sql import (
    ACTOR,
    ALERTS,
    AUDIT_EVENTS,
    NOTIFICATIONS,
    PG_WRITE,
    PROPOSALS,
    Statements,
    alert_upsert,
    iso,
    json_default,
    proposal_insert,
    same,
)
from core.alerts.webhook import WebhookAlert, WebhookPayload
from core.audit import audit_row
from core.db.dialect import lock_names
from core.db.models import OPEN_PROPOSAL_STATUSES
from core.policy.spec import PolicySpec
from core.policy.store import LoadedPolicies
from core.switches import AUTO_PAUSED

# Rendered decisions kept for repeated alerts (Alertmanager re-sends every firing alert of a
# group at each group_interval); FIFO-evicted, dropped whenever the policies change.
DECISION_CACHE_SIZE = 20_000
EPISODE_CACHE_SIZE = 20_000
_LEARNT = "infraai.ingest.learnt"  # session.info key: facts to remember once committed


@dataclass
class IngestOutcome:
    """What one payload produced, for the HTTP answer and the metrics."""

    received: int
    proposals: int = 0
    by_policy: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    render_errors: int = 0
    refused: int = 0  # alerts the database would not store (each audited as alert.refused)
    auto_approved: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class IngestSettings:
    default_channel: str | None
    proposal_ttl: timedelta
    dry_run: bool


@dataclass
class _Seen:
    alert: WebhookAlert
    count: int
    payload: int


@dataclass(frozen=True, slots=True)
class _Rendered:
    """What the ingest reads from one policy decision, computed once. (Not the Decision
    itself: remembered for many alerts, every object it holds is work for the garbage
    collector, and its params model is three.)"""

    policy: PolicySpec
    action: ActionSpec
    error: str | None
    key: str  # the dedup key ("" when the params did not render)
    params: dict[str, Any]
    target: str


@dataclass(frozen=True, slots=True)
class _Known:
    """What follows from a firing alert's content alone, computed once per content: the
    policies' decisions, and the content members of its row in PostgreSQL's JSON document."""

    rendered: tuple[_Rendered, ...]
    fragment: str


def _merge(payloads: Sequence[WebhookPayload]) -> dict[str, _Seen]:
    """One row per fingerprint (a single upsert may not touch a row twice); the latest wins."""
    merged: dict[str, _Seen] = {}
    for index, payload in enumerate(payloads):
        for alert in payload.alerts:
            seen = merged.get(alert.fingerprint)
            if seen is None:
                merged[alert.fingerprint] = _Seen(alert, 1, index)
            else:
                seen.alert, seen.count = alert, seen.count + 1
    return merged


# ---------------------------------------------------------------- statements


class Ingestor:
    """Turns validated payloads into committed rows; `ingest_batch` is one transaction."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self._statements: dict[bool, Statements] = {}
        self._decisions: dict[tuple[Any, ...], _Known] = {}
        self._decisions_for: LoadedPolicies | None = None
        # Firing episodes known (from committed rows) to have their proposal for a key:
        # (alert id, startsAt, dedup key). Append-only in the database, so safe to remember;
        # Alertmanager's repeats of such an episode then need no look at the history.
        self._proposed: dict[tuple[int, datetime | None, str], None] = {}

    def _sql(self, pg: bool) -> Statements:
        statements = self._statements.get(pg)
        if statements is None:
            statements = self._statements[pg] = Statements(pg)
        return statements

    def _known(self, policies: LoadedPolicies, alert: WebhookAlert) -> _Known:
        """The decisions for a firing alert and its serialised content (remembered for the
        exact repeats Alertmanager sends at every group_interval)."""
        if self._decisions_for is not policies:
            self._decisions.clear()
            self._decisions_for = policies
        key = (
            alert.fingerprint,
            alert.starts_at,
            alert.generator_url,
            tuple(alert.labels.items()),
            tuple(alert.annotations.items()),
        )
        found = self._decisions.get(key)
        if found is not None:
            return found
        decisions = policies.policy_set.evaluate(
            alert.labels,
            alert.annotations,
            status="firing",
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at.isoformat() if alert.starts_at else "",
            generator_url=alert.generator_url,
        )
        rendered = tuple(
            _Rendered(d.policy, d.action, None, d.dedup_key, d.params_dict, d.target)
            if d.error is None
            else _Rendered(d.policy, d.action, d.error, "", {}, "")
            for d in decisions
        )
        content = {
            "fingerprint": alert.fingerprint,
            "alertname": alert.alertname[:255],
            "labels": alert.labels,
            "annotations": alert.annotations,
            "starts_at": iso(alert.starts_at),
            "generator_url": alert.generator_url,
        }
        known = _Known(rendered, json.dumps(content, separators=(",", ":"))[1:-1])
        if len(self._decisions) >= DECISION_CACHE_SIZE:
            del self._decisions[next(iter(self._decisions))]
        self._decisions[key] = known
        return known

    def committed(self, session: AsyncSession) -> None:
        """Call after the transaction of `ingest_batch(session, …)` committed: what it learnt
        about episodes that have their proposal becomes safe to remember."""
        for fact in session.info.pop(_LEARNT, ()):
            if len(self._proposed) >= EPISODE_CACHE_SIZE:
                del self._proposed[next(iter(self._proposed))]
            self._proposed[fact] = None

    async def ingest_batch(
        self,
        session: AsyncSession,
        payloads: Sequence[WebhookPayload],
        policies: LoadedPolicies,
        now: datetime,
    ) -> list[IngestOutcome]:
        sql = self._sql(session.get_bind().dialect.name == "postgresql")
        connection = await session.connection()
        learnt: list[tuple[int, datetime | None, str]] = []
        session.info[_LEARNT] = learnt
        outcomes = [IngestOutcome(received=len(p.alerts)) for p in payloads]
        merged = _merge(payloads)

        # Policies first (pure, no I/O). A render failure is audited once per episode, which
        # needs the alert's state before this upsert: read it for those alerts only.
        known = {
            fp: self._known(policies, seen.alert)
            for fp, seen in merged.items()
            if seen.alert.status == "firing"
        }
        failing = [fp for fp, item in known.items() if any(r.error for r in item.rendered)]
        previous: dict[str, tuple[str, datetime | None]] = {}
        if failing:
            result = await connection.execute(sql.previous, {"fingerprints": failing})
            previous = {row.fingerprint: (row.status, row.starts_at) for row in result.all()}

        # Timestamps as the backend takes them: ISO text inside PostgreSQL's JSON document
        # (converted here, once: a `default=` hook doubles json.dumps's time), else datetimes.
        stamp = iso if sql.pg else same
        now_value = stamp(now)
        ordered = sorted(merged.items())  # fixed order: concurrent writers never deadlock
        if sql.pg:
            # The document by hand from the remembered content members: a repeated alert
            # costs a string join instead of serialising its labels and annotations again.
            now_json = json.dumps(now_value)
            parts: list[str] = []
            for fp, seen in ordered:
                cached = known.get(fp)
                if cached is None:  # resolved: serialised whole
                    row = _alert_row(fp, seen, stamp, now_value)
                    parts.append(json.dumps(row, separators=(",", ":")))
                    continue
                ends = "null" if seen.alert.ends_at is None else json.dumps(iso(seen.alert.ends_at))
                parts.append(
                    f'{{{cached.fragment},"status":"firing","ends_at":{ends},'
                    f'"first_seen":{now_json},"last_seen":{now_json},'
                    f'"times_received":{seen.count:d}}}'
                )
            stored = await sql.upsert_alerts(connection, "[" + ",".join(parts) + "]")
        else:
            rows = [_alert_row(fp, seen, stamp, now_value) for fp, seen in ordered]
            stored = await sql.insert(connection, ALERTS, rows, alert_upsert)

        audits: list[dict[str, Any]] = []
        candidates: list[tuple[Any, _Rendered, _Seen]] = []
        resolved_ids: list[int] = []
        for row in stored:
            seen = merged[row.fingerprint]
            if row.status == "resolved":
                resolved_ids.append(row.id)
                continue
            content = known.get(row.fingerprint)
            if content is None:
                # A late "resolved" from an older episode left the alert firing: evaluate it as
                # before; the episode is not new (the row kept its state), so no audit again.
                content = self._known(policies, seen.alert)
                new_episode = False
            else:
                new_episode = previous.get(row.fingerprint) != ("firing", row.starts_at)
            for item in content.rendered:
                decision = item
                if decision.error is None:
                    if (row.id, row.starts_at, item.key) not in self._proposed:
                        candidates.append((row, item, seen))
                    # else: a repeat of an episode that has its proposal; nothing to decide
                    continue
                outcomes[seen.payload].render_errors += 1
                if new_episode:
                    audits.append(
                        audit_row(
                            ACTOR,
                            "policy.render_failed",
                            decision.policy.name,
                            alert=row.fingerprint,
                            alertname=seen.alert.alertname,
                            error=decision.error,
                        )
                    )

        planned = await self._plan(session, sql, candidates, policies, now, learnt, stamp)
        if sql.pg:
            inserted, superseded = await self._write_pg(
                connection, planned, resolved_ids, audits, now
            )
        else:
            graphed = frozenset(
                row.id for row, _, _ in candidates if _has_expression(merged[row.fingerprint])
            )
            inserted, superseded = await self._write_rows(
                connection, sql, planned, resolved_ids, audits, now, graphed
            )
        for row, payload_index, decision, alert_row in planned:
            got = inserted.get(row["dedup_key"])
            if got is None:
                continue  # a concurrent delivery holds the open proposal for this key
            learnt.append((alert_row.id, alert_row.starts_at, row["dedup_key"]))
            outcome = outcomes[payload_index]
            outcome.proposals += 1
            outcome.by_policy[decision.policy.name] += 1
            if got[1] == "rate_limited":
                outcome.rate_limited += 1
            elif got[1] == "approved":
                outcome.auto_approved.append(got[0])
        if superseded:
            outcomes[0].superseded.extend(superseded)
        return outcomes

    async def _plan(
        self,
        session: AsyncSession,
        sql: Statements,
        candidates: list[tuple[Any, _Rendered, _Seen]],
        policies: LoadedPolicies,
        now: datetime,
        learnt: list[tuple[int, datetime | None, str]],
        stamp: Callable[[datetime | None], Any],
    ) -> list[tuple[dict[str, Any], int, _Rendered, Any]]:
        """The proposals to insert (rows, in dedup-key order), under the history's rules."""
        if not candidates:
            return []
        connection = await session.connection()
        # The hourly cap is a count-then-insert per policy: serialise it per capped policy.
        # Nothing else needs a lock: open proposals are guarded by the unique index (a
        # concurrent insert of the same key waits for the first to commit, then does
        # nothing), one episode's deliveries by the alert row the upsert has locked, and a
        # cooldown decides the same whichever of two concurrent writers goes first.
        capped_names = sorted(
            {r.policy.name for _, r, _ in candidates if r.policy.max_runs_per_hour}
        )
        if capped_names:
            await lock_names(session, [f"policy:{n}" for n in capped_names])
        keys = sorted({r.key for _, r, _ in candidates})
        max_cooldown = max(r.policy.cooldown_seconds for _, r, _ in candidates)
        episodes = {(row.id, row.starts_at) for row, _, _ in candidates}
        history = (
            await connection.execute(
                sql.history,
                {
                    "keys": keys,
                    "horizon": now - timedelta(seconds=max_cooldown),
                    "alert_ids": sorted({alert_id for alert_id, _ in episodes}),
                },
            )
        ).all()
        by_key: dict[str, list[Any]] = {}
        for earlier_row in history:
            by_key.setdefault(earlier_row.dedup_key, []).append(earlier_row)
            if (earlier_row.alert_id, earlier_row.alert_starts_at) in episodes:
                learnt.append(
                    (earlier_row.alert_id, earlier_row.alert_starts_at, earlier_row.dedup_key)
                )

        capped = sorted(
            {
                policies.ids[name]
                for name in capped_names
                if name in policies.ids  # a policy deleted since the cache loaded has no id
            }
        )
        runs: Counter[int] = Counter()
        if capped:
            result = await connection.execute(
                sql.runs, {"policy_ids": capped, "since": now - timedelta(hours=1)}
            )
            for policy_id, count in result.all():
                runs[policy_id or 0] = count
        paused: bool | None = None
        now_value = stamp(now)

        planned: dict[str, tuple[dict[str, Any], int, _Rendered, Any]] = {}
        for alert_row, item, seen in candidates:
            key, decision = item.key, item
            spec = decision.policy
            earlier = by_key.get(key, [])
            if key in planned or any(p.status in OPEN_PROPOSAL_STATUSES for p in earlier):
                continue
            if any(
                p.alert_id == alert_row.id and p.alert_starts_at == alert_row.starts_at
                for p in earlier
            ):
                continue  # this episode already has its proposal (a retry or a repeat)
            policy_id = policies.ids.get(spec.name)
            status, reason = "pending", None
            recent = [
                p
                for p in earlier
                if p.status != "rate_limited"
                and p.created_at > now - timedelta(seconds=spec.cooldown_seconds)
            ]
            if spec.cooldown_seconds and recent:
                last = max(recent, key=lambda p: p.created_at)
                until = last.created_at + timedelta(seconds=spec.cooldown_seconds)
                status = "rate_limited"
                reason = (
                    f"cooldown: #{last.id} ran this at {last.created_at:%H:%M:%S}Z; "
                    f"next allowed after {until:%H:%M:%S}Z"
                )
            elif spec.max_runs_per_hour and runs[policy_id or 0] >= spec.max_runs_per_hour:
                status = "rate_limited"
                reason = f"hourly cap: {spec.max_runs_per_hour} proposals in the last hour"
            else:
                runs[policy_id or 0] += 1
            decided_by = decided_at = None
            if status == "pending" and spec.approval == "auto":
                if paused is None:
                    paused = bool(await connection.scalar(sql.paused, {"n": AUTO_PAUSED}))
                if paused:
                    reason = "auto-remediation is paused: needs a person's approval"
                else:
                    status, decided_by, decided_at = "approved", "auto", now
            row = {
                "source": "alert",
                "alert_id": alert_row.id,
                "alert_starts_at": stamp(alert_row.starts_at),
                "policy_id": policy_id,
                "policy_name": spec.name,
                "action": decision.action.name,
                "params": item.params,
                "target": item.target,
                "risk": decision.action.risk,
                "approval": spec.approval,
                "approvers": list(spec.approvers),
                "dry_run": spec.dry_run or self.settings.dry_run,
                "status": status,
                "status_reason": reason,
                "requested_by": ACTOR,
                "decided_by": decided_by,
                "decided_at": stamp(decided_at),
                "expires_at": stamp(now + self.settings.proposal_ttl)
                if status == "pending"
                else None,
                "dedup_key": key,
                "slack_channel": spec.channel or self.settings.default_channel,
                "created_at": now_value,
                "updated_at": now_value,
            }
            planned[key] = (row, seen.payload, decision, alert_row)
        # Keys in a fixed order: two writers inserting overlapping keys wait, never deadlock.
        return [planned[key] for key in sorted(planned)]

    async def _write_pg(
        self,
        connection: AsyncConnection,
        planned: list[tuple[dict[str, Any], int, _Rendered, Any]],
        resolved_ids: list[int],
        audits: list[dict[str, Any]],
        now: datetime,
    ) -> tuple[dict[str, tuple[int, str]], list[int]]:
        """PostgreSQL: proposals, supersedes, audit events and outbox rows in one statement."""
        if not (planned or resolved_ids or audits):
            return {}, []
        result = await connection.execute(
            PG_WRITE,
            {
                "proposals": _json([row for row, _, _, _ in planned]),
                "resolved": resolved_ids,
                "audits": _json(audits),
                "now": now,
            },
        )
        inserted: dict[str, tuple[int, str]] = {}
        superseded: list[int] = []
        for kind, pid, key, status in result.all():
            if kind == "proposed":
                inserted[key] = (pid, status)
            else:
                superseded.append(pid)
        return inserted, superseded

    async def _write_rows(
        self,
        connection: AsyncConnection,
        sql: Statements,
        planned: list[tuple[dict[str, Any], int, _Rendered, Any]],
        resolved_ids: list[int],
        audits: list[dict[str, Any]],
        now: datetime,
        graphed: frozenset[int] = frozenset(),
    ) -> tuple[dict[str, tuple[int, str]], list[int]]:
        """The same writes as `PG_WRITE`, statement by statement (SQLite). `graphed`: the
        alerts whose generatorURL carries an expression (their proposals get a graph row)."""
        inserted: dict[str, tuple[int, str]] = {}
        notifications: list[dict[str, Any]] = []
        graphs: list[dict[str, Any]] = []  # alert graphs (issue 9)
        if planned:
            result = await sql.insert(
                connection, PROPOSALS, [row for row, _, _, _ in planned], proposal_insert
            )
            inserted = {got.dedup_key: (got.id, got.status) for got in result}
            for row, _, decision, alert_row in planned:
                found = inserted.get(row["dedup_key"])
                if found is None:
                    continue
                pid, status = found
                verb = {
                    "rate_limited": "proposal.rate_limited",
                    "approved": "proposal.auto_approved",
                }.get(status, "proposal.created")
                audits.append(
                    audit_row(
                        ACTOR,
                        verb,
                        f"proposal/{pid}",
                        policy=decision.policy.name,
                        action=row["action"],
                        params=row["params"],
                        reason=row["status_reason"],
                    )
                )
                notifications.append(_notification("proposal", pid, row, now))
                if alert_row.id in graphed:
                    graphs.append({**_notification("graph", pid, row, now), "group_key": None})
        superseded: list[int] = []
        if resolved_ids:
            result = await connection.execute(
                sql.supersede, {"alert_ids": resolved_ids, "now": now}
            )
            superseded = [got.id for got in result.all()]
            for pid in superseded:
                audits.append(
                    audit_row(
                        ACTOR, "proposal.superseded", f"proposal/{pid}", reason="alert resolved"
                    )
                )
                notifications.append(_notification("update", pid, None, now))
        notifications += graphs  # after every proposal row, as in PG_WRITE
        if audits:
            await sql.insert(connection, AUDIT_EVENTS, audits)
        if notifications:
            await sql.insert(connection, NOTIFICATIONS, notifications)
        return inserted, superseded


def _alert_row(
    fingerprint: str, seen: _Seen, stamp: Callable[[datetime | None], Any], now: Any
) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "alertname": seen.alert.alertname[:255],
        "status": seen.alert.status,
        "labels": seen.alert.labels,
        "annotations": seen.alert.annotations,
        "starts_at": stamp(seen.alert.starts_at),
        "ends_at": stamp(seen.alert.ends_at),
        "generator_url": seen.alert.generator_url,
        "first_seen": now,
        "last_seen": now,
        "times_received": seen.count,
    }


def _notification(
    kind: str, proposal_id: int, row: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    return {
        "kind": kind,
        "proposal_id": proposal_id,
        "channel": row["slack_channel"] if row else None,
        "group_key": row["policy_name"] if row else None,
        "payload": {} if row else {"reason": "resolved"},
        "attempts": 0,
        "created_at": now,
    }


def _has_expression(seen: _Seen) -> bool:
    """As PG_WRITE's `generator_url LIKE '%g0.expr=%'`: Prometheus' graph link."""
    return "g0.expr=" in (seen.alert.generator_url or "")


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=json_default, separators=(",", ":"))
