"""Helpers shared by the CLI commands: a short-lived runtime and tables for terminals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from core.config import Settings
from core.runtime import Runtime


class CliError(Exception):
    """Input the command refuses; shown as one line, exit 2."""


@asynccontextmanager
async def runtime_for(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime for one command, refusing an out-of-date schema with a hint to migrate."""
    runtime = Runtime.build(settings)
    try:
        await runtime.check_schema()
        yield runtime
    finally:
        await runtime.close()


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
