"""Helpers shared by the CLI commands: a short-lived runtime and tables for terminals."""

from __future__ import annotations

import textwrap
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


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, width: int | None = None
) -> str:
    """A plain aligned table; empty input says so instead of printing bare headers.

    With `width`, the last column (a note, a result) is wrapped at word boundaries so each
    line fits: beside the other columns when there is room, else on its own lines under its
    row. A single word longer than a line stays whole: it overflows rather than being cut.
    """
    if not rows:
        return "(none)"
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = []
    for index, row in enumerate(cells):
        head = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True))
        last = row[-1]
        if width is None or indent + len(last) <= width:
            lines.append(f"{head}  {last}".rstrip() if head else last)
        elif width - indent >= 30:
            wrapped = _wrap(last, width - indent)
            lines.append(f"{head}  {wrapped[0]}".rstrip())
            lines.extend(" " * indent + part for part in wrapped[1:])
        else:  # too little room beside: under the row, indented
            lines.append(head.rstrip())
            if index:  # the header row's last column needs no line of its own
                lines.extend("    " + part for part in _wrap(last, width - 4))
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
