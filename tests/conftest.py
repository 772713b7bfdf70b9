"""Shared fixtures: real PostgreSQL and SQLite databases, settings, runtimes, peers.

Integration tests skip with a reason that says how to get their server when it is absent;
with INFRAAI_REQUIRE_INTEGRATION=1 (set by .ci/run) every skip is a failure instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from core.config import Settings
from core.db.models import Base
from core.db.schema import upgrade
from core.runtime import Runtime
from tests.peers.prometheus_stack import alertmanager_factory, prometheus_factory

__all__ = ["alertmanager_factory", "prometheus_factory"]

PG_HOST = os.environ.get("INFRAAI_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("INFRAAI_TEST_PG_PORT", "5432"))
PG_HINT = (
    f"PostgreSQL is not answering on {PG_HOST}:{PG_PORT}; start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
)
REQUIRE_INTEGRATION = os.environ.get("INFRAAI_REQUIRE_INTEGRATION") == "1"

# Property tests explore new inputs on every developer run; in CI they replay the same ones,
# so a landing is never refused by a draw no one has seen (run them locally to find more).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if REQUIRE_INTEGRATION:
    hypothesis_settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_INTEGRATION and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every integration test is required: {reason}"


# What the test run itself is configured by; everything else an operator's shell may hold
# for InfraAI (its settings, a kubeconfig, in-cluster service variables) is removed per test.
_RUN_VARIABLES = ("INFRAAI_REQUIRE_INTEGRATION", "INFRAAI_TEST_")
_SHELL_VARIABLES = (
    *(name.upper() for name in Settings.model_fields),
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without the shell's InfraAI, vSphere and Kubernetes settings."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(_RUN_VARIABLES):
            continue
        if upper in _SHELL_VARIABLES or upper.startswith(("INFRAAI_", "VSPHERE_")):
            monkeypatch.delenv(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.properties.tally import summary

    lines = summary()
    if lines:
        terminalreporter.section("property tests")
        for line in lines:
            terminalreporter.write_line(line)


async def _pg_admin() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", database="postgres", timeout=3
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped afterwards."""
    name = f"infraai_test_{secrets.token_hex(4)}"

    async def create() -> None:
        admin = await _pg_admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    async def drop() -> None:
        admin = await _pg_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(create())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"{PG_HINT} ({exc})")
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    upgrade(url)
    yield url
    asyncio.run(drop())


async def truncate_all(url: str) -> None:
    from core.db.engine import create_engine

    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if url.startswith("postgresql"):
            await connection.execute(
                sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            )
        else:
            for table in tables:
                await connection.execute(sa.text(f"DELETE FROM {table}"))
    await engine.dispose()


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[str]:
    """The session's PostgreSQL database, emptied before the test."""
    await truncate_all(pg_url)
    yield pg_url


@pytest.fixture
def sqlite_db(tmp_path: Any) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/infraai.db"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on both backends."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_db"))
    return str(request.getfixturevalue("pg_db"))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "slack_bot_token": None,
        "slack_signing_secret": None,
        "slack_app_token": None,
        "infraai_channel": "C0OPS",
        "alerts_token": None,
        "infraai_policies": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[Runtime]:
    rt = Runtime.build(make_settings(db_url))
    yield rt
    await rt.close()
