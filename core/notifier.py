"""The notifier port and the outbox drain that feeds it.

Chat platforms implement `Notifier` (Slack in `bot/slack/`, the terminal in `bot/console.py`).
`OutboxDrain` reads unsent rows from the `notifications` table in order and hands them to the
port, so a Slack outage or a 429 delays messages and never drops them:

* per channel, rows go out in the order they were written; a row that must wait (Retry-After,
  back-off) holds back the rows after it in that channel, and only those;
* posts are paced per channel (Slack allows about one message per second per channel);
* a burst of new proposals for one policy in one channel becomes one grouped message;
* several bot replicas never send one row twice: on PostgreSQL rows are claimed with
  `FOR UPDATE SKIP LOCKED` and each channel is drained under an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import record
from core.cards import ProposalCard, load_cards
from core.db.dialect import try_lock_name
from core.db.models import Notification, Proposal
from core.db.types import utcnow

log = logging.getLogger(__name__)

GROUP_MIN = 3  # this many pending proposal posts for one policy in one channel → one message
MAX_ATTEMPTS = 25
NO_CHANNEL = ""


@dataclass(frozen=True)
class MessageRef:
    channel: str
    ts: str


class NotifierError(Exception):
    """Sending failed. `retry_after`: when to try again (None: back off by attempts);
    `permanent`: retrying cannot help (unknown channel, invalid blocks)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Notifier(Protocol):
    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef: ...

    async def update_proposal(self, card: ProposalCard, ref: MessageRef) -> None: ...

    async def post_group(self, cards: Sequence[ProposalCard], channel: str) -> MessageRef: ...

    async def update_group(self, cards: Sequence[ProposalCard], ref: MessageRef) -> None: ...

    async def post_group_detail(self, cards: Sequence[ProposalCard], ref: MessageRef) -> None: ...

    async def post_in_thread(
        self, card: ProposalCard | None, channel: str, thread_ts: str | None, text: str
    ) -> MessageRef: ...


def backoff(attempts: int) -> float:
    return float(min(300, 2 ** min(attempts, 9)))


class Pacer:
    """Per-channel spacing of posts (in memory: each replica paces what it sends)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}

    def ready(self, channel: str) -> bool:
        return time.monotonic() >= self._next.get(channel, 0.0)

    def sent(self, channel: str) -> None:
        self._next[channel] = time.monotonic() + self.interval

    def wait_hint(self) -> float:
        if not self._next:
            return 0.0
        return max(0.0, min(self._next.values()) - time.monotonic())


class OutboxDrain:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        notifier: Notifier,
        *,
        default_channel: str | None = None,
        default_approvers: tuple[str, ...] = (),
        pace_seconds: float = 1.0,
        group_window: timedelta = timedelta(seconds=10),
        batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._default_channel = default_channel
        self._default_approvers = default_approvers
        self.pacer = Pacer(pace_seconds)
        self._group_window = group_window
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was written to the outbox: drain now rather than at the next tick."""
        self._wake.set()

    async def run(self, idle_seconds: float = 1.0) -> None:
        """Drain forever (the bot's background task)."""
        while True:
            try:
                await self.drain_once()
            except Exception:
                log.exception("outbox drain failed; retrying")
            pause = idle_seconds
            hint = self.pacer.wait_hint()
            if hint:
                pause = min(pause, max(hint, 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()

    async def drain_once(self, now: datetime | None = None) -> int:
        """Send what can be sent now; returns how many rows were sent."""
        now = now or utcnow()
        async with self._sessions() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = (
                sa.select(Notification)
                .where(Notification.sent_at.is_(None))
                .order_by(Notification.id)
                .limit(self._batch)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.scalars(query)).all())
            by_channel: dict[str, list[Notification]] = defaultdict(list)
            proposal_channels = await self._channels(session, rows)
            for row in rows:
                channel = (
                    row.channel
                    or proposal_channels.get(row.proposal_id or 0)
                    or self._default_channel
                    or NO_CHANNEL
                )
                by_channel[channel].append(row)
            sent = 0
            for channel, items in by_channel.items():
                if postgres and not await try_lock_name(session, f"outbox:{channel}"):
                    continue
                sent += await self._drain_channel(session, channel, items, now)
                if not postgres:
                    await session.commit()
            await session.commit()
        return sent

    async def _channels(self, session: AsyncSession, rows: list[Notification]) -> dict[int, str]:
        ids = {r.proposal_id for r in rows if r.proposal_id is not None and not r.channel}
        if not ids:
            return {}
        result = await session.execute(
            sa.select(Proposal.id, Proposal.slack_channel).where(Proposal.id.in_(ids))
        )
        return {pid: channel for pid, channel in result.all() if channel}

    async def _drain_channel(
        self, session: AsyncSession, channel: str, items: list[Notification], now: datetime
    ) -> int:
        sent = 0
        index = 0
        while index < len(items):
            row = items[index]
            if row.not_before is not None and row.not_before > now:
                break  # keep this channel's order: later rows wait behind this one
            group = self._group_at(items, index) if row.kind == "proposal" else []
            posts = row.kind in ("proposal", "thread")
            if posts and not self.pacer.ready(channel):
                break
            try:
                if len(group) >= GROUP_MIN:
                    await self._send_group(session, channel, group)
                    consumed = group
                else:
                    await self._send(session, channel, row)
                    consumed = [row]
            except NotifierError as exc:
                self._defer(session, row, exc, now)
                break
            if posts:
                self.pacer.sent(channel)
            for item in consumed:
                item.sent_at = now
            sent += len(consumed)
            index += len(consumed)
            if group and len(group) >= GROUP_MIN:
                # Rows of the group may not be contiguous; skip the ones already sent.
                items = [r for r in items if r.sent_at is None]
                index = 0
        return sent

    def _group_at(self, items: list[Notification], index: int) -> list[Notification]:
        first = items[index]
        if not first.group_key:
            return [first]
        window_end = first.created_at + self._group_window
        return [
            r
            for r in items[index:]
            if r.kind == "proposal"
            and r.group_key == first.group_key
            and r.created_at <= window_end
            and (r.not_before is None or r.not_before <= first.created_at + self._group_window)
        ]

    def _defer(
        self, session: AsyncSession, row: Notification, exc: NotifierError, now: datetime
    ) -> None:
        row.attempts += 1
        row.last_error = str(exc)[:1000]
        if (exc.permanent and row.attempts >= 3) or row.attempts >= MAX_ATTEMPTS:
            # Give up on this one row so the channel is not blocked forever; say so loudly.
            row.sent_at = now
            log.error(
                "giving up on notification %s after %s attempts: %s", row.id, row.attempts, exc
            )
            record(
                session,
                "notifier",
                "notification.failed",
                f"notification/{row.id}",
                error=str(exc)[:500],
                proposal=row.proposal_id,
            )
            return
        delay = exc.retry_after if exc.retry_after is not None else backoff(row.attempts)
        row.not_before = now + timedelta(seconds=delay)
        log.warning("notification %s deferred %.1fs: %s", row.id, delay, exc)

    async def _cards(self, session: AsyncSession, ids: list[int]) -> list[ProposalCard]:
        return await load_cards(session, ids, self._default_approvers)

    async def _send(self, session: AsyncSession, channel: str, row: Notification) -> None:
        if row.proposal_id is None:
            text = str(row.payload.get("text", ""))
            await self._notifier.post_in_thread(None, channel, None, text)
            return
        cards = await self._cards(session, [row.proposal_id])
        if not cards:
            return  # the proposal is gone; nothing to show
        card = cards[0]
        if row.kind == "proposal":
            if card.message_ts:
                return  # already posted (a replica raced us before claiming rows)
            ref = await self._notifier.post_proposal(card, channel)
            await session.execute(
                sa.update(Proposal)
                .where(Proposal.id == card.id)
                .values(slack_channel=ref.channel, slack_ts=ref.ts, slack_thread_ts=ref.ts)
            )
        elif row.kind == "update":
            if card.message_ts is None:
                return  # never posted: the pending post renders the current state anyway
            ref = MessageRef(card.channel or channel, card.message_ts)
            siblings = await self._group_members(session, ref)
            if len(siblings) > 1:
                await self._notifier.update_group(await self._cards(session, siblings), ref)
            else:
                await self._notifier.update_proposal(card, ref)
        elif row.kind == "thread":
            text = str(row.payload.get("text", ""))
            await self._notifier.post_in_thread(card, card.channel or channel, card.thread_ts, text)

    async def _group_members(self, session: AsyncSession, ref: MessageRef) -> list[int]:
        return list(
            (
                await session.scalars(
                    sa.select(Proposal.id)
                    .where(Proposal.slack_channel == ref.channel, Proposal.slack_ts == ref.ts)
                    .order_by(Proposal.id)
                )
            ).all()
        )

    async def _send_group(
        self, session: AsyncSession, channel: str, rows: list[Notification]
    ) -> None:
        ids = [r.proposal_id for r in rows if r.proposal_id is not None]
        cards = [c for c in await self._cards(session, ids) if not c.message_ts]
        if not cards:
            return
        ref = await self._notifier.post_group(cards, channel)
        await session.execute(
            sa.update(Proposal)
            .where(Proposal.id.in_([c.id for c in cards]))
            .values(slack_channel=ref.channel, slack_ts=ref.ts, slack_thread_ts=ref.ts)
        )
        try:
            await self._notifier.post_group_detail(cards, ref)
        except NotifierError as exc:
            # The summary is out and holds the buttons; the detail is a courtesy.
            log.warning("group detail for %s failed: %s", ref, exc)
