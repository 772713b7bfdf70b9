"""Group commit: one bad item never fails its neighbours; only a connection fault is
"database unavailable" (503, retried by Alertmanager)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from bot.http.app import create_app
from core.alerts.group_commit import DatabaseUnavailable, GroupCommitter, is_connection_fault
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import count, crashloop, install_policies, payload, policy, rows


class _Orig(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi(kind: type[Any], sqlstate: str | None = None, **kwargs: Any) -> Exception:
    return kind("INSERT …", {}, _Orig(sqlstate), **kwargs)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (OSError("connection refused"), True),
        (TimeoutError(), True),
        (_dbapi(InterfaceError), True),
        (_dbapi(OperationalError, "08006"), True),
        (_dbapi(OperationalError, "57P01"), True),
        (_dbapi(OperationalError), True),  # no SQLSTATE: the driver lost the connection
        (_dbapi(DataError, "22P05", connection_invalidated=True), True),
        (_dbapi(DataError, "22P05"), False),  # untranslatable character (NUL in jsonb)
        (_dbapi(DataError, "22008"), False),  # datetime field overflow
        (_dbapi(IntegrityError, "23505"), False),
        (OverflowError("date value out of range"), False),
        (ValueError("bad value"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_connection_class_errors_are_faults(exc: Exception, fault: bool) -> None:
    assert is_connection_fault(exc) is fault


async def _shared_batch(committer: GroupCommitter[str, str], items: Sequence[str]) -> list[Any]:
    return await asyncio.gather(*(committer.submit(i) for i in items), return_exceptions=True)


async def test_a_bad_item_is_retried_alone_and_fails_alone() -> None:
    batches: list[list[str]] = []

    async def commit(items: Sequence[str]) -> list[str]:
        batches.append(list(items))
        if "bad" in items:
            raise _dbapi(DataError, "22P05")
        return [f"ok:{i}" for i in items]

    committer: GroupCommitter[str, str] = GroupCommitter(commit, writers=1)
    try:
        results = await _shared_batch(committer, ["a", "bad", "b"])
    finally:
        await committer.stop()
    assert batches[0] == ["a", "bad", "b"]  # one shared batch first
    assert results[0] == "ok:a" and results[2] == "ok:b"
    assert isinstance(results[1], DataError)
    assert not isinstance(results[1], DatabaseUnavailable)


async def test_a_connection_fault_fails_the_whole_batch_as_unavailable() -> None:
    async def commit(items: Sequence[str]) -> list[str]:
        raise _dbapi(OperationalError, "08006")

    committer: GroupCommitter[str, str] = GroupCommitter(commit, writers=1)
    try:
        results = await _shared_batch(committer, ["a", "b", "c"])
    finally:
        await committer.stop()
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert "08006" not in str(results[0])  # the reason is for the log, not the sender


TOKEN = "t0ken"


async def test_an_alert_the_database_refuses_is_recorded_and_its_neighbours_kept(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime.build(make_settings(db_url, alerts_token=TOKEN))
    await install_policies(runtime, policy())
    ingestor = runtime.alerts._ingestor
    original = ingestor.ingest_batch

    async def refusing(session: Any, payloads: Any, *args: Any) -> Any:
        # Stands for a value no normalisation foresaw: the database refuses the statement.
        if any(a.labels.get("pod") == "poison" for p in payloads for a in p.alerts):
            raise _dbapi(DataError, "22P05")
        return await original(session, payloads, *args)

    monkeypatch.setattr(ingestor, "ingest_batch", refusing)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    mixed = payload(crashloop(pod="left"), crashloop(pod="poison"), crashloop(pod="right"))
    others = [payload(crashloop(pod=f"other-{i}")) for i in range(5)]
    try:
        async with TestClient(TestServer(create_app(runtime))) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/alerts", data=json.dumps(body), headers=headers)
                    for body in [mixed, *others]
                )
            )
            assert [r.status for r in responses] == [200] * 6
            assert await responses[0].json() == {"received": 3, "proposals": 2, "refused": 1}
            assert await count(runtime, "alerts") == 7
            assert await count(runtime, "proposals") == 7
            [event] = await rows(
                runtime, "SELECT subject, detail FROM audit_events WHERE verb = 'alert.refused'"
            )
            detail = event["detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            assert detail["alertname"] == "KubePodCrashLooping"
            assert "22P05" in detail["error"]
            # Alertmanager's repeat of the delivery answers 200 again: no retry loop.
            again = await client.post("/alerts", data=json.dumps(mixed), headers=headers)
            assert again.status == 200
    finally:
        await runtime.close()
