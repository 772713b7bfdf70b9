"""Alembic, driven from code: `infraai migrate` and the start-up schema check.

The check does not import Alembic (a quarter of a second of start-up for every CLI
command): the head revision is read from the migration files, the current one from the
`alembic_version` table, and a test holds the first to what Alembic computes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaOutOfDate(Exception):
    """The database is behind the code; the message says what to run."""


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration, as Alembic computes it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


_REVISION = re.compile(r'^revision: str = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision: str \| None = (?:"([^"]+)"|None)', re.MULTILINE)


def head_from_files() -> str | None:
    """The newest migration, read from the files' `revision` / `down_revision` lines: the
    one no other revises (the history is linear)."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        text = path.read_text()
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None and down.group(1):
            revised.add(down.group(1))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous: Alembic's env.py runs its own event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def _current(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _missing_sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of the engine's SQLite file if it does not exist (one stat), else None."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return None if os.path.exists(str(url.database)) else str(url.database)


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse to run against a schema older (or newer) than this code expects.

    A SQLite file that does not exist is refused before connecting: connecting would create
    it, and a refused start would leave an empty database file behind.
    """
    missing = _missing_sqlite_file(engine)
    if missing is not None:
        raise SchemaOutOfDate(f"no database at {missing}: run `infraai migrate` to create it")
    current, head = await current_revision(engine), head_from_files()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this InfraAI needs {head}: "
            "run `infraai migrate`"
        )
