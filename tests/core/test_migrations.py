"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
and the table names are the contract of DESIGN §3."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from core.db.engine import create_engine
from core.db.models import Base
from core.db.schema import current_revision, head_revision

CONTRACT_TABLES = {
    "alerts",
    "policies",
    "proposals",
    "job_logs",
    "assets",
    "chat_messages",
    "audit_events",
}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []


def test_contract_tables_exist_with_their_names() -> None:
    assert set(Base.metadata.tables) >= CONTRACT_TABLES
    proposals = Base.metadata.tables["proposals"].c
    for column in (
        "source",
        "alert_id",
        "policy_id",
        "action",
        "params",
        "target",
        "status",
        "requested_by",
        "decided_by",
        "decided_at",
        "expires_at",
        "slack_channel",
        "slack_ts",
        "slack_thread_ts",
        "dedup_key",
    ):
        assert column in proposals, column


@pytest.mark.parametrize("table", sorted(CONTRACT_TABLES))
def test_every_table_has_an_integer_id(table: str) -> None:
    column = Base.metadata.tables[table].c["id"]
    assert column.primary_key and column.type.python_type is int


def test_the_head_read_from_the_files_is_alembics() -> None:
    from core.db.schema import head_from_files

    assert head_from_files() == head_revision()


def test_the_schema_check_imports_no_alembic() -> None:
    import subprocess
    import sys

    probe = "import sys, core.db.schema; print('alembic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
