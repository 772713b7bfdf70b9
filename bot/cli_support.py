"""Helpers shared by the CLI commands: a short-lived runtime and tables for terminals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.config import Settings


class CliError(Exception):
    """Input the command refuses; shown as one line, exit 2."""


@asynccontextmanager
async def session_for(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A database session for one command, refusing an out-of-date schema with a hint to
    migrate. Only the database: a command that reads rows has no use for the runtime's
    executor, notifier and integrations, nor for the time it takes to import them."""
    from core.db.engine import create_engine, session_factory
    from core.db.schema import require_current_schema

    engine = create_engine(settings.database_url)
    try:
        await require_current_schema(engine)
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned table; empty input says so instead of printing bare headers."""
    if not rows:
        return "(none)"
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)
