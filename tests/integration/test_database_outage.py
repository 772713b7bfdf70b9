"""The database stops mid-run: /alerts answers 503 (Alertmanager retries) and /readyz 503;
when it is back, the same process recovers without a restart and nothing was lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from core.db.schema import upgrade
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import count, crashloop, install_policies, payload, policy
from tests.peers.postgres import ThrowawayPostgres, throwaway_postgres

__all__ = ["throwaway_postgres"]
pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(
    throwaway_postgres: ThrowawayPostgres,
) -> AsyncIterator[tuple[ThrowawayPostgres, Runtime, TestClient[Any, Any]]]:
    await asyncio.to_thread(upgrade, throwaway_postgres.url)
    runtime = Runtime.build(make_settings(throwaway_postgres.url))
    await install_policies(runtime, policy())
    async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as client:
        yield throwaway_postgres, runtime, client
    await runtime.close()


async def test_database_down_gives_503_then_recovers(stack) -> None:
    cluster, runtime, client = stack
    first = await client.post("/alerts", data=json.dumps(payload(crashloop(pod="api-1"))))
    assert first.status == 200

    cluster.stop()
    delivery = json.dumps(payload(crashloop(pod="api-2")))
    during = await client.post("/alerts", data=delivery)
    assert during.status == 503
    assert "database unavailable" in (await during.json())["error"]
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["database"]["ok"] is False
    assert (await client.get("/healthz")).status == 200

    cluster.start()
    assert (await client.get("/readyz")).status == 200
    retried = await client.post("/alerts", data=delivery)  # Alertmanager's retry
    assert retried.status == 200
    assert await retried.json() == {"received": 1, "proposals": 1}
    assert await count(runtime, "alerts") == 2
    assert await count(runtime, "proposals") == 2
    metrics = await (await client.get("/metrics")).text()
    assert 'infraai_webhook_rejects_total{reason="database"} 1.0' in metrics
