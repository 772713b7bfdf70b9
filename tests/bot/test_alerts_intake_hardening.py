"""POST /alerts against large, unusual and hostile deliveries, on SQLite and real PostgreSQL.

Each case here lost alerts, answered 500 or put a delivery into a retry loop before: a valid
600-alert body read only as far as was buffered, a value PostgreSQL cannot store failing its
whole group-commit batch as "database unavailable", a header or body the parser choked on.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from bot.http.server import make_runner
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import alert, count, crashloop, install_policies, payload, policy, rows

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLES = ("alerts", "proposals", "audit_events", "notifications")


@pytest.fixture
async def app_runtime(db_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(make_settings(db_url, alerts_token=TOKEN))
    await install_policies(runtime, policy())
    yield runtime
    await runtime.close()


class ServedAsInProduction(TestServer):
    """The test server with the runner `infraai serve` uses."""

    async def _make_runner(self, **kwargs: Any) -> Any:
        return make_runner(self.app, **kwargs)


@pytest.fixture
async def server(app_runtime: Runtime) -> AsyncIterator[TestServer]:
    async with ServedAsInProduction(create_app(app_runtime), host="127.0.0.1") as test_server:
        yield test_server


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(server) as test_client:
        yield test_client


async def raw_request(
    server: TestServer, head: bytes, body: bytes = b"", *, hang_up: bool = False
) -> bytes:
    """Send bytes as they are (headers a client library would refuse), read the answer;
    `hang_up` closes our sending side after the body, as a client that gave up would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        if hang_up:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def big_delivery(n: int) -> dict[str, Any]:
    return payload(*(crashloop(pod=f"api-{i:04d}-" + "x" * 200) for i in range(n)))


# ------------------------------------------------------------------ the whole body, always


async def test_a_600_alert_delivery_is_read_whole(client, app_runtime) -> None:
    body = json.dumps(big_delivery(600)).encode()
    assert len(body) > 256 * 1024  # well past what one read returns from the socket buffer
    response = await client.post("/alerts", data=body, headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["received"] == 600
    assert await count(app_runtime, "alerts") == 600
    assert await count(app_runtime, "proposals") == 600


async def test_a_chunked_600_alert_delivery_is_read_whole(client, app_runtime) -> None:
    body = json.dumps(big_delivery(600)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7000):
            yield body[start : start + 7000]
            await asyncio.sleep(0)

    response = await client.post("/alerts", data=chunks(), headers=AUTH)
    assert response.status == 200, await response.text()
    assert await count(app_runtime, "alerts") == 600


async def test_a_body_shorter_than_its_content_length_records_nothing(server, app_runtime) -> None:
    body = json.dumps(payload(crashloop())).encode()
    head = (
        b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body) + 100}\r\n".encode()
    )
    answer = await raw_request(server, head, body, hang_up=True)
    assert status_of(answer) in (0, 400)  # no answer (the client left) or a 400; never 200
    assert await count(app_runtime, "alerts") == 0


async def test_a_chunked_body_over_1_mib_gets_413(client, app_runtime) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * (100 * 1024)

    response = await client.post("/alerts", data=chunks(), headers=AUTH)
    assert response.status == 413
    assert "1 MiB" in (await response.json())["error"]


async def test_a_gzip_delivery_is_accepted_and_a_bad_one_refused(
    client, app_runtime, caplog
) -> None:
    body = gzip.compress(json.dumps(payload(crashloop())).encode())
    headers = {**AUTH, "Content-Encoding": "gzip"}
    assert (await client.post("/alerts", data=body, headers=headers)).status == 200
    with caplog.at_level(logging.INFO):
        bad = await client.post("/alerts", data=b"\x1f\x8bnot gzip at all", headers=headers)
        assert bad.status == 400
        assert "error" in await bad.json()
    # Refused with a reason, and not logged as a crash of the server.
    assert [r for r in caplog.records if r.exc_info] == []


# --------------------------------------------------- bad input: a 4xx with a reason, never 500


HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("5,000-digit integer", b'{"version": "4", "truncatedAlerts": ' + b"9" * 5000 + b"}"),
    ("1,000-deep nesting", b"[" * 1000 + b"]" * 1000),
    ("100,000-deep nesting", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("invalid UTF-8", b'{"version": "4", "receiver": "\xff\xfe"}'),
    ("NUL byte raw", b'{"version": "4"\x00}'),
    ("huge float", b'{"version": "4", "truncatedAlerts": 1e999}'),
]


@pytest.mark.parametrize(("case", "body"), HOSTILE_BODIES, ids=[c for c, _ in HOSTILE_BODIES])
async def test_hostile_bodies_get_400_and_write_nothing(client, app_runtime, case, body) -> None:
    before = [await count(app_runtime, t) for t in TABLES]
    response = await client.post("/alerts", data=body, headers=AUTH)
    assert response.status == 400, (case, await response.text())
    assert (await response.json())["error"]
    assert [await count(app_runtime, t) for t in TABLES] == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer \xe9\xe8".encode("latin-1"),
        "Basic \xe9t\xe9".encode("latin-1"),
        b"Basic " + b"a" * 10_001,
        b"Basic =",
    ],
    ids=["non-ASCII bearer", "non-ASCII basic", "long basic", "padding only"],
)
async def test_odd_authorization_headers_get_401(server, app_runtime, authorization) -> None:
    body = json.dumps(payload(crashloop())).encode()
    head = (
        b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + b"Authorization: "
        + authorization
        + b"\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
    )
    answer = await raw_request(server, head, body)
    assert status_of(answer) in (400, 401), answer[:200]
    assert await count(app_runtime, "alerts") == 0


async def test_an_unknown_charset_is_not_a_500(client, app_runtime) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=klingon"}
    response = await client.post("/alerts", data=json.dumps(payload(crashloop())), headers=headers)
    assert response.status in (200, 400, 415)


async def test_parser_errors_are_not_logged_with_their_header_lines(server, caplog) -> None:
    head = (
        b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {TOKEN}\x01\r\n".encode()
        + b"Content-Length: nope\r\n"
    )
    with caplog.at_level(logging.DEBUG):
        answer = await raw_request(server, head)
    assert status_of(answer) == 400
    assert TOKEN.encode() not in answer
    assert TOKEN not in caplog.text


# ------------------------------------------- unusual values: kept, normalised, never a retry


def unusual_alerts() -> list[dict[str, Any]]:
    long_pod = "p" * 253  # valid: a DNS subdomain name; with "prod/" the target is 258 long
    return [
        crashloop(pod=long_pod),
        crashloop(pod="api-nul", annotations={"summary": "bad\u0000byte"}),
        alert({"alertname": "Odd\u0000Name", "job": "x"}),
        crashloop(pod="api-surrogate", annotations={"summary": "lone \ud800 surrogate"}),
        crashloop(pod="api-offset", starts_at="2026-11-29T08:00:00+23:30"),
        crashloop(pod="api-far-future", starts_at="9999-12-31T23:00:00-05:00"),
        crashloop(pod="api-far-past", starts_at="0002-01-01T00:00:00+23:00"),
        crashloop(pod="api-normal"),
    ]


def as_json(values: Any) -> bytes:
    # ensure_ascii keeps the lone surrogate as a \ud800 escape, as Go's encoder would not
    # (it writes U+FFFD); both must be accepted.
    return json.dumps(values, ensure_ascii=True).encode()


async def test_a_raw_surrogate_is_kept_as_a_replacement_character(client, app_runtime) -> None:
    """Encoded as raw bytes (UTF-8 with surrogates allowed), not as a `\\ud800` escape:
    Python's json reads such bytes as lone surrogates, which PostgreSQL's json refuses."""
    alerts = payload(
        crashloop(pod="api-raw", annotations={"summary": "lone \ud800 surrogate", "\udc80": "k"})
    )
    body = json.dumps(alerts, ensure_ascii=False).encode("utf-8", "surrogatepass")
    response = await client.post("/alerts", data=body, headers=AUTH)
    assert response.status == 200, await response.text()
    assert await response.json() == {"received": 1, "proposals": 1}
    [stored] = await rows(app_runtime, "SELECT annotations FROM alerts")
    annotations = stored["annotations"]
    annotations = json.loads(annotations) if isinstance(annotations, str) else annotations
    assert annotations == {"summary": "lone \ufffd surrogate", "\ufffd": "k"}


async def test_unusual_values_are_kept_next_to_their_neighbours(client, app_runtime) -> None:
    response = await client.post("/alerts", data=as_json(payload(*unusual_alerts())), headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["received"] == 8
    assert await count(app_runtime, "alerts") == 8
    targets = {r["target"] for r in await rows(app_runtime, "SELECT target FROM proposals")}
    assert "prod/" + "p" * 253 in targets
    assert "prod/api-normal" in targets
    assert len(targets) == 7
    stored = await rows(app_runtime, "SELECT alertname, annotations FROM alerts")
    text = json.dumps([dict(r) for r in stored], default=str)
    assert "\\u0000" not in text and "\\ud800" not in text
    assert any(r["alertname"] == "Odd\ufffdName" for r in stored)
    # A redelivery is harmless: nothing doubled.
    again = await client.post("/alerts", data=as_json(payload(*unusual_alerts())), headers=AUTH)
    assert again.status == 200
    assert await count(app_runtime, "proposals") == 7


async def test_unusual_values_in_concurrent_deliveries_fail_no_neighbour(
    client, app_runtime
) -> None:
    bodies = [as_json(payload(item)) for item in unusual_alerts()]
    bodies += [as_json(payload(crashloop(pod=f"ok-{i}"))) for i in range(20)]
    responses = await asyncio.gather(
        *(client.post("/alerts", data=body, headers=AUTH) for body in bodies)
    )
    assert [r.status for r in responses] == [200] * len(bodies)
    assert await count(app_runtime, "alerts") == len(bodies)


async def test_far_future_start_reads_back(client, app_runtime) -> None:
    item = crashloop(pod="api-far-future", starts_at="9999-12-31T23:00:00-05:00")
    response = await client.post("/alerts", data=as_json(payload(item)), headers=AUTH)
    assert response.status == 200
    [stored] = await rows(app_runtime, "SELECT starts_at FROM alerts")
    assert stored["starts_at"] is not None
