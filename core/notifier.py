"""The notifier port and the outbox drain that feeds it.

Chat platforms implement `Notifier` (Slack in `bot/slack/`, the terminal in `bot/console.py`).
`OutboxDrain` reads unsent rows from the `notifications` table in order and hands them to the
port, so a Slack outage or a 429 delays messages and never drops them:

* per channel, rows go out in the order they were written; a row that must wait (Retry-After,
  back-off) holds back the rows after it in that channel, and only those;
* posts and edits are paced per channel (Slack allows about one message per second per
  channel), and the edits a pass would make to one message coalesce into one;
* a burst of new proposals for one policy in one channel becomes one grouped message;
* several bot replicas never send one row twice nor out of order: each channel is drained
  in its own transaction under an advisory lock (PostgreSQL), and its rows are read only
  once the lock is held — so whoever holds a channel sees all of its unsent rows;
* a Slack outage or rate limit never gives up on a row (it backs off, up to 5 minutes);
  only a permanent refusal (unknown channel, invalid blocks) or a crash rendering one row
  does, after a few tries, with an audit event — so one bad row cannot block its channel.
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
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alert_graph import AlertGraphs, Skipped
from core.audit import record
from core.cards import ProposalCard, load_cards
from core.db.dialect import try_lock_name
from core.db.models import PROPOSAL_STATUSES, Notification, Proposal
from core.db.types import utcnow
from core.promql import expression_of

log = logging.getLogger(__name__)

GROUP_MIN = 3  # this many pending proposal posts for one policy in one channel → one message
GRAPH_UPLOAD_ATTEMPTS = 3  # a graph's upload is tried this often, then the graph is skipped
PERMANENT_ATTEMPTS = 3  # a row Slack refuses for good (or that crashes us) is given up after
NO_CHANNEL = ""
# Kinds that post or edit a message: paced per channel. Edits too: a storm's approve-all
# re-renders one big group message, at most once a second however many decisions land.
PACED = ("proposal", "thread", "detail", "update", "graph")
GRAPHS_PER_THREAD = 5  # distinct expressions graphed in one thread (a storm's group message)


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
    """A chat surface. One that sets `shows_each_state = True` (it appends lines rather than
    editing a message: the console) gets one `update_proposal` per announced change, with
    the card as of that change; others get one edit per message per pass, from the
    current state."""

    async def post_proposal(self, card: ProposalCard, channel: str) -> MessageRef: ...

    async def update_proposal(self, card: ProposalCard, ref: MessageRef) -> None: ...

    async def post_group(self, cards: Sequence[ProposalCard], channel: str) -> MessageRef: ...

    async def update_group(self, cards: Sequence[ProposalCard], ref: MessageRef) -> None: ...

    async def post_group_detail(
        self, cards: Sequence[ProposalCard], ref: MessageRef, part: int = 0
    ) -> bool:
        """Post part `part` of the group's per-proposal detail in its thread; return whether
        another part follows (each part is one paced post)."""
        ...

    async def post_in_thread(
        self, card: ProposalCard | None, channel: str, thread_ts: str | None, text: str
    ) -> MessageRef: ...

    async def post_file(
        self,
        card: ProposalCard,
        channel: str,
        thread_ts: str | None,
        *,
        filename: str,
        content: bytes,
        title: str,
    ) -> None:
        """Share a file (an alert's graph, a PNG) in the proposal's thread."""
        ...


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
        graphs: AlertGraphs | None = None,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._default_channel = default_channel
        self._default_approvers = default_approvers
        self.pacer = Pacer(pace_seconds)
        self._group_window = group_window
        self._batch = batch
        self._wake = asyncio.Event()
        self._graphs = graphs

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
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives
            # as the event is set, and the bot then hangs at shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            self._wake.clear()

    async def drain_once(self, now: datetime | None = None) -> int:
        """Send what can be sent now; returns how many rows were sent."""
        now = now or utcnow()
        async with self._sessions() as session:
            pending = (
                await session.execute(
                    sa.select(Notification.id, Notification.channel, Notification.proposal_id)
                    .where(Notification.sent_at.is_(None))
                    .order_by(Notification.id)
                    .limit(self._batch)
                )
            ).all()
            proposal_channels = await self._channels(session, pending)
        by_channel: dict[str, list[int]] = defaultdict(list)
        for row in pending:
            channel = (
                row.channel
                or proposal_channels.get(row.proposal_id or 0)
                or self._default_channel
                or NO_CHANNEL
            )
            by_channel[channel].append(row.id)
        sent = 0
        for channel, ids in by_channel.items():
            # One transaction per channel: a replica holding the channel's lock reads its
            # rows afresh (what another replica sent meanwhile is no longer unsent), and
            # one channel's failure never undoes what another channel already sent.
            async with self._sessions() as session, session.begin():
                if not await try_lock_name(session, f"outbox:{channel}"):
                    continue  # another replica is draining this channel
                items = list(
                    (
                        await session.scalars(
                            sa.select(Notification)
                            .where(Notification.id.in_(ids), Notification.sent_at.is_(None))
                            .order_by(Notification.id)
                        )
                    ).all()
                )
                if items:
                    sent += await self._drain_channel(session, channel, items, now)
        return sent

    async def _channels(self, session: AsyncSession, rows: Sequence[Any]) -> dict[int, str]:
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
        updated: set[MessageRef] = set()  # messages already re-rendered in this pass
        while index < len(items):
            row = items[index]
            if row.not_before is not None and row.not_before > now:
                break  # keep this channel's order: later rows wait behind this one
            group = self._group_at(items, index) if row.kind == "proposal" else []
            paced = row.kind in PACED
            if paced and not self.pacer.ready(channel):
                break
            try:
                if len(group) >= GROUP_MIN:
                    called = await self._send_group(session, channel, group, now)
                    consumed = group
                else:
                    called = await self._send(session, channel, row, now, updated)
                    consumed = [row]
            except NotifierError as exc:
                self._defer(session, row, exc, now)
                break
            except SQLAlchemyError:
                raise  # the database, not the row: this channel's pass is rolled back
            except Exception as exc:
                # A bug rendering or sending this one row: treated as a permanent refusal,
                # so it is retried a few times and then given up on, loudly.
                log.exception("notification %s could not be sent", row.id)
                failure = NotifierError(f"{type(exc).__name__}: {exc}", permanent=True)
                self._defer(session, row, failure, now)
                break
            if paced and called:
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
        if exc.permanent and row.attempts >= PERMANENT_ATTEMPTS:
            # Give up on this one row so the channel is not blocked forever; say so loudly.
            # Outages and rate limits never get here: they delay a message, never drop it.
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

    async def _send(
        self,
        session: AsyncSession,
        channel: str,
        row: Notification,
        now: datetime,
        updated: set[MessageRef],
    ) -> bool:
        """Send one row; returns whether the platform was called (for the pacing)."""
        if row.proposal_id is None:
            text = str(row.payload.get("text", ""))
            await self._notifier.post_in_thread(None, channel, None, text)
            return True
        cards = await self._cards(session, [row.proposal_id])
        if not cards:
            return False  # the proposal is gone; nothing to show
        card = cards[0]
        if row.kind == "proposal":
            if card.message_ts:
                return False  # already posted (a replica raced us before claiming rows)
            ref = await self._notifier.post_proposal(card, channel)
            await session.execute(
                sa.update(Proposal)
                .where(Proposal.id == card.id)
                .values(slack_channel=ref.channel, slack_ts=ref.ts, slack_thread_ts=ref.ts)
            )
            return True
        if row.kind == "update":
            if card.message_ts is None:
                return False  # never posted: the pending post renders the current state
            ref = MessageRef(card.channel or channel, card.message_ts)
            if getattr(self._notifier, "shows_each_state", False):
                # A surface that appends (the console) prints each change once, as announced.
                announced = str(row.payload.get("reason", ""))
                if announced in PROPOSAL_STATUSES:
                    card = card.as_announced(announced)
                await self._notifier.update_proposal(card, ref)
                return True
            if ref in updated:
                # Rendered from the state at send time, after this row was committed: one
                # edit per message per pass shows every decision (approve-all: 1, not N).
                return False
            siblings = await self._group_members(session, ref)
            if len(siblings) > 1:
                await self._notifier.update_group(await self._cards(session, siblings), ref)
            else:
                await self._notifier.update_proposal(card, ref)
            updated.add(ref)
            return True
        if row.kind == "detail":
            ref = MessageRef(card.channel or channel, str(row.payload["ts"]))
            part = int(row.payload.get("part", 0))
            members = await self._cards(session, await self._group_members(session, ref))
            if not members:
                return False
            if await self._notifier.post_group_detail(members, ref, part):
                self._announce_detail(session, card.id, ref, part + 1, now)
            return True
        if row.kind == "thread":
            text = str(row.payload.get("text", ""))
            await self._notifier.post_in_thread(card, card.channel or channel, card.thread_ts, text)
            return True
        if row.kind == "graph":
            return await self._send_graph(session, channel, row, card)
        log.warning("notification %s: unknown kind %r, skipped", row.id, row.kind)
        return False

    # ---- alert graphs (issue 9) ----------------------------------------------------------

    async def _send_graph(
        self, session: AsyncSession, channel: str, row: Notification, card: ProposalCard
    ) -> bool:
        """The graph of the alert's expression in the proposal's thread: at most one per
        expression per thread (a storm's group message gets one, not one per alert), and
        skipped — recorded on the row and logged, never retried — when it cannot be drawn."""
        alert = card.alert
        expr = expression_of(alert.generator_url) if alert is not None else None
        if alert is None or expr is None:
            return self._graph_done(row, "skipped", "the alert's generatorURL has no expression")
        if not card.thread_ts:
            return self._graph_done(row, "skipped", "the proposal's message was not posted", expr)
        if self._graphs is None:
            return self._graph_done(row, "skipped", "this process draws no graphs", expr)
        thread = MessageRef(card.channel or channel, card.thread_ts)
        shown = await self._graphed(session, thread)
        if expr in shown:
            return self._graph_done(row, "skipped", "already graphed in this thread", expr)
        if len(shown) >= GRAPHS_PER_THREAD:
            return self._graph_done(row, "skipped", "enough graphs in this thread", expr)
        drawn = await self._graphs.draw(expr, alert.alertname, alert.starts_at)
        if isinstance(drawn, Skipped):
            # Not configured is a choice (`/infraai status` shows it): no line per alert.
            (log.debug if drawn.quiet else log.warning)(
                "graph for proposal %s skipped: %s", card.id, drawn.reason
            )
            return self._graph_done(row, "skipped", drawn.reason, expr)
        try:
            await self._notifier.post_file(
                card,
                thread.channel,
                thread.ts,
                filename=drawn.filename,
                content=drawn.content,
                title=drawn.title,
            )
        except NotifierError as exc:
            # A graph is a nicety: after a few tries it gives way, or the channel's later
            # proposals would wait behind it for as long as uploads fail (a proxy that lets
            # chat.postMessage through but not files.slack.com fails them for ever).
            if exc.permanent or row.attempts + 1 >= GRAPH_UPLOAD_ATTEMPTS:
                log.warning("graph for proposal %s given up: upload failed: %s", card.id, exc)
                return self._graph_done(row, "skipped", f"upload failed: {exc}", expr)
            raise
        self._graph_done(row, "posted", "", expr)
        return True

    @staticmethod
    def _graph_done(row: Notification, state: str, reason: str, expr: str | None = None) -> bool:
        row.payload = {"graph": state, "reason": reason[:500], "expr": (expr or "")[:2000]}
        return False

    async def _graphed(self, session: AsyncSession, thread: MessageRef) -> set[str]:
        """Expressions already graphed in the thread (of any proposal of a group message)."""
        members = sa.select(Proposal.id).where(
            Proposal.slack_channel == thread.channel, Proposal.slack_thread_ts == thread.ts
        )
        payloads = await session.scalars(
            sa.select(Notification.payload).where(
                Notification.kind == "graph",
                Notification.sent_at.is_not(None),
                Notification.proposal_id.in_(members),
            )
        )
        return {str(p.get("expr")) for p in payloads if p and p.get("graph") == "posted"}

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
        self, session: AsyncSession, channel: str, rows: list[Notification], now: datetime
    ) -> bool:
        ids = [r.proposal_id for r in rows if r.proposal_id is not None]
        cards = [c for c in await self._cards(session, ids) if not c.message_ts]
        if not cards:
            return False
        ref = await self._notifier.post_group(cards, channel)
        await session.execute(
            sa.update(Proposal)
            .where(Proposal.id.in_([c.id for c in cards]))
            .values(slack_channel=ref.channel, slack_ts=ref.ts, slack_thread_ts=ref.ts)
        )
        # The per-proposal detail goes to the thread through the outbox, one paced post per
        # part: a storm's summary must not be followed by a burst of thread replies.
        self._announce_detail(session, cards[0].id, ref, 0, now)
        return True

    def _announce_detail(
        self, session: AsyncSession, proposal_id: int, ref: MessageRef, part: int, now: datetime
    ) -> None:
        session.add(
            Notification(
                kind="detail",
                proposal_id=proposal_id,
                channel=ref.channel,
                payload={"ts": ref.ts, "part": part},
                created_at=now,
            )
        )
