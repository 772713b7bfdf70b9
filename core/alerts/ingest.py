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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.webhook import WebhookAlert, WebhookPayload
from core.audit import audit_row
from core.db.dialect import lock_names, upsert
from core.db.models import OPEN_PROPOSAL_STATUSES, Alert, AuditEvent, Notification, Proposal
from core.policy.engine import Decision
from core.policy.store import LoadedPolicies
from core.switches import AUTO_PAUSED

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


@dataclass
class IngestOutcome:
    """What one payload produced, for the HTTP answer and the metrics."""

    received: int
    proposals: int = 0
    by_policy: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    render_errors: int = 0
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


def _alert_upsert(session: AsyncSession, merged: dict[str, _Seen], now: datetime) -> Any:
    table = Alert.__table__
    rows = [
        {
            "fingerprint": fp,
            "alertname": seen.alert.alertname[:255],
            "status": seen.alert.status,
            "labels": seen.alert.labels,
            "annotations": seen.alert.annotations,
            "starts_at": seen.alert.starts_at,
            "ends_at": seen.alert.ends_at,
            "generator_url": seen.alert.generator_url,
            "first_seen": now,
            "last_seen": now,
            "times_received": seen.count,
        }
        for fp, seen in sorted(merged.items())  # fixed order: concurrent writers never deadlock
    ]
    insert = upsert(session, table)
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
    return (
        insert.values(rows)
        .on_conflict_do_update(index_elements=["fingerprint"], set_=updates)
        .returning(current.id, current.fingerprint, current.status, current.starts_at)
    )


class Ingestor:
    """Turns validated payloads into committed rows; `ingest_batch` is one transaction."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings

    async def ingest_batch(
        self,
        session: AsyncSession,
        payloads: Sequence[WebhookPayload],
        policies: LoadedPolicies,
        now: datetime,
    ) -> list[IngestOutcome]:
        outcomes = [IngestOutcome(received=len(p.alerts)) for p in payloads]
        merged = _merge(payloads)
        previous = {
            row.fingerprint: (row.status, row.starts_at)
            for row in (
                await session.execute(
                    sa.select(Alert.fingerprint, Alert.status, Alert.starts_at).where(
                        Alert.fingerprint.in_(list(merged))
                    )
                )
            ).all()
        }
        stored = (await session.execute(_alert_upsert(session, merged, now))).all()

        audits: list[dict[str, Any]] = []
        candidates: list[tuple[Any, Decision, _Seen]] = []
        resolved_ids: list[int] = []
        for row in stored:
            seen = merged[row.fingerprint]
            if row.status == "resolved":
                resolved_ids.append(row.id)
                continue
            alert = seen.alert
            decisions = policies.policy_set.evaluate(
                alert.labels,
                alert.annotations,
                status=row.status,
                fingerprint=row.fingerprint,
                starts_at=alert.starts_at.isoformat() if alert.starts_at else "",
                generator_url=alert.generator_url,
            )
            new_episode = previous.get(row.fingerprint) != ("firing", row.starts_at)
            for decision in decisions:
                if decision.error is None:
                    candidates.append((row, decision, seen))
                    continue
                outcomes[seen.payload].render_errors += 1
                if new_episode:
                    audits.append(
                        audit_row(
                            ACTOR,
                            "policy.render_failed",
                            decision.policy.name,
                            alert=row.fingerprint,
                            alertname=alert.alertname,
                            error=decision.error,
                        )
                    )

        new_proposals = await self._propose(session, candidates, policies, now, outcomes, audits)
        superseded = await self._supersede(session, resolved_ids, now, audits)
        notifications: list[dict[str, Any]] = [
            {
                "kind": "proposal",
                "proposal_id": pid,
                "channel": channel,
                "group_key": group,
                "payload": {},
                "created_at": now,
            }
            for pid, channel, group in new_proposals
        ] + [
            {
                "kind": "update",
                "proposal_id": pid,
                "channel": None,
                "group_key": None,
                "payload": {"reason": "resolved"},
                "created_at": now,
            }
            for pid in superseded
        ]
        if superseded:
            outcomes[0].superseded.extend(superseded)
        if audits:
            await session.execute(sa.insert(AuditEvent), audits)
        if notifications:
            await session.execute(sa.insert(Notification), notifications)
        return outcomes

    async def _propose(
        self,
        session: AsyncSession,
        candidates: list[tuple[Any, Decision, _Seen]],
        policies: LoadedPolicies,
        now: datetime,
        outcomes: list[IngestOutcome],
        audits: list[dict[str, Any]],
    ) -> list[tuple[int, str | None, str]]:
        if not candidates:
            return []
        names = sorted({d.policy.name for _, d, _ in candidates})
        await lock_names(session, [f"policy:{n}" for n in names])
        keys = sorted({d.dedup_key for _, d, _ in candidates})
        max_cooldown = max(d.policy.cooldown_seconds for _, d, _ in candidates)
        horizon = now - timedelta(seconds=max_cooldown)
        history = (
            await session.execute(
                sa.select(
                    Proposal.id,
                    Proposal.dedup_key,
                    Proposal.alert_id,
                    Proposal.alert_starts_at,
                    Proposal.status,
                    Proposal.created_at,
                ).where(
                    Proposal.dedup_key.in_(keys),
                    sa.or_(
                        Proposal.status.in_(OPEN_PROPOSAL_STATUSES),
                        Proposal.created_at >= horizon,
                        Proposal.alert_id.in_({row.id for row, _, _ in candidates}),
                    ),
                )
            )
        ).all()
        by_key: dict[str, list[Any]] = {}
        for item in history:
            by_key.setdefault(item.dedup_key, []).append(item)

        capped = {
            policies.ids[d.policy.name]
            for _, d, _ in candidates
            if d.policy.max_runs_per_hour and d.policy.name in policies.ids
        }
        runs: Counter[int] = Counter()
        if capped:
            for policy_id, count in (
                await session.execute(
                    sa.select(Proposal.policy_id, sa.func.count())
                    .where(
                        Proposal.policy_id.in_(capped),
                        Proposal.created_at >= now - timedelta(hours=1),
                        Proposal.status.in_(RUN_STATUSES),
                    )
                    .group_by(Proposal.policy_id)
                )
            ).all():
                runs[policy_id or 0] = count
        paused: bool | None = None

        rows: list[dict[str, Any]] = []
        meta: list[tuple[int, Decision]] = []
        planned: set[str] = set()
        for alert_row, decision, seen in candidates:
            key, spec = decision.dedup_key, decision.policy
            earlier = by_key.get(key, [])
            if key in planned or any(p.status in OPEN_PROPOSAL_STATUSES for p in earlier):
                continue
            if any(
                p.alert_id == alert_row.id and p.alert_starts_at == alert_row.starts_at
                for p in earlier
            ):
                continue  # this episode already has its proposal (a retry or a repeat)
            planned.add(key)
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
                    paused = bool(
                        await session.scalar(
                            sa.text("SELECT value FROM switches WHERE name = :n"),
                            {"n": AUTO_PAUSED},
                        )
                    )
                if paused:
                    reason = "auto-remediation is paused: needs a person's approval"
                else:
                    status, decided_by, decided_at = "approved", "auto", now
            rows.append(
                {
                    "source": "alert",
                    "alert_id": alert_row.id,
                    "alert_starts_at": alert_row.starts_at,
                    "policy_id": policy_id,
                    "policy_name": spec.name,
                    "action": decision.action.name,
                    "params": decision.params_dict,
                    "target": decision.target,
                    "risk": decision.action.risk,
                    "approval": spec.approval,
                    "approvers": list(spec.approvers),
                    "dry_run": spec.dry_run or self.settings.dry_run,
                    "status": status,
                    "status_reason": reason,
                    "requested_by": ACTOR,
                    "decided_by": decided_by,
                    "decided_at": decided_at,
                    "expires_at": now + self.settings.proposal_ttl if status == "pending" else None,
                    "dedup_key": key,
                    "slack_channel": spec.channel or self.settings.default_channel,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            meta.append((seen.payload, decision))
        if not rows:
            return []
        insert = (
            upsert(session, Proposal.__table__)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["dedup_key"],
                index_where=OPEN_DEDUP_PREDICATE,
            )
            .returning(Proposal.id, Proposal.dedup_key, Proposal.status)
        )
        inserted = {row.dedup_key: row for row in (await session.execute(insert)).all()}
        created: list[tuple[int, str | None, str]] = []
        for (payload_index, decision), row in zip(meta, rows, strict=True):
            got = inserted.get(row["dedup_key"])
            if got is None:
                continue  # a concurrent delivery holds the open proposal for this key
            outcome = outcomes[payload_index]
            outcome.proposals += 1
            outcome.by_policy[decision.policy.name] += 1
            verb = "proposal.created"
            if got.status == "rate_limited":
                outcome.rate_limited += 1
                verb = "proposal.rate_limited"
            elif got.status == "approved":
                outcome.auto_approved.append(got.id)
                verb = "proposal.auto_approved"
            audits.append(
                audit_row(
                    ACTOR,
                    verb,
                    f"proposal/{got.id}",
                    policy=decision.policy.name,
                    action=row["action"],
                    params=row["params"],
                    reason=row["status_reason"],
                )
            )
            created.append((got.id, row["slack_channel"], decision.policy.name))
        return created

    async def _supersede(
        self,
        session: AsyncSession,
        alert_ids: list[int],
        now: datetime,
        audits: list[dict[str, Any]],
    ) -> list[int]:
        if not alert_ids:
            return []
        result = await session.execute(
            sa.update(Proposal)
            .where(Proposal.alert_id.in_(alert_ids), Proposal.status == "pending")
            .values(
                status="superseded", status_reason="alert resolved before approval", updated_at=now
            )
            .returning(Proposal.id)
        )
        ids = [row.id for row in result.all()]
        for pid in ids:
            audits.append(
                audit_row(ACTOR, "proposal.superseded", f"proposal/{pid}", reason="alert resolved")
            )
        return ids
