"""The few statements whose SQL differs between PostgreSQL and SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert(session: AsyncSession, table: Any) -> Any:
    """`INSERT … ON CONFLICT` for the session's backend (both speak it; the builders differ)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _lock_key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


async def lock_names(session: AsyncSession, names: Iterable[str]) -> None:
    """Serialise transactions that read-then-write per name (guard-rail counts) across
    processes. PostgreSQL: transaction-scoped advisory locks, taken in a fixed order so two
    writers cannot deadlock. SQLite already serialises writers."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(n) for n in names})
    if keys:
        await session.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
            ),
            {"keys": keys},
        )


async def try_lock_name(session: AsyncSession, name: str) -> bool:
    """A transaction-scoped advisory lock if free (PostgreSQL); always True elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(name)}
    )
    return bool(got)
