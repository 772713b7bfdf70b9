"""Property tests of POST /alerts: whatever the body, never a 5xx or a traceback, and
nothing half-written — a 2xx records every alert it names, a 4xx records nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.http.app import create_app
from core.alerts.webhook import label_fingerprint
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import count, crashloop, install_policies, payload, policy, rows
from tests.properties.strategies import (
    any_text,
    json_scalars,
    json_values,
    label_name,
    long_text,
    timestamps,
)
from tests.properties.tally import tally

TOKEN = "property-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


class Served:
    """The app on a loop of its own, so hypothesis (synchronous) drives it example by example."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime, self.client = self.run(self._start(url))

    @staticmethod
    async def _start(url: str) -> tuple[Runtime, TestClient[Any, Any]]:
        runtime = Runtime.build(make_settings(url, alerts_token=TOKEN))
        regex = policy(name="regex", priority=5, matchers=['instance=~"(a+)+$"', 'pod=~".*x.*"'])
        await install_policies(runtime, policy(), regex)
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(runtime)))
        await client.start_server()
        return runtime, client

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.run(self.client.close())
        self.run(self.runtime.close())
        self.loop.close()

    def counts(self) -> list[int]:
        tables = ("alerts", "proposals", "audit_events", "notifications")
        return [self.run(count(self.runtime, table)) for table in tables]

    def post(self, surface: str, body: bytes) -> tuple[int, Any]:
        async def send() -> tuple[int, Any]:
            response = await self.client.post("/alerts", data=body, headers=AUTH)
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

        status, answer = self.run(send())
        tally(surface, status)
        return status, answer


@pytest.fixture
def served(db_url: str) -> Iterator[Served]:
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    app = Served(db_url)
    try:
        yield app
    finally:
        app.close()
        logging.getLogger().removeHandler(handler)
    assert [h.getMessage() for h in handler.records] == []


def _check(served: Served, surface: str, body: bytes, alerts: list[dict[str, Any]]) -> None:
    before = served.counts()
    status, answer = served.post(surface, body)
    assert status < 500, answer
    if status != 200:
        assert 400 <= status < 500 and isinstance(answer, dict) and answer["error"]
        assert served.counts() == before, "a refused delivery wrote something"
        return
    assert answer["received"] == len(alerts)
    assert answer.get("refused", 0) == 0, answer
    expected = {a.get("fingerprint") or _fingerprint(a) for a in alerts}
    stored = served.run(rows(served.runtime, "SELECT fingerprint FROM alerts"))
    assert expected <= {r["fingerprint"] for r in stored}


def _fingerprint(item: dict[str, Any]) -> str:
    from core.alerts.webhook import storable

    return label_fingerprint(storable(item["labels"]))


alerts_strategy = st.builds(
    lambda labels, annotations, status, starts, ends, url, fp: {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": url,
        **({"fingerprint": fp} if fp is not None else {}),
    },
    st.dictionaries(label_name, long_text, min_size=1, max_size=5).map(
        lambda d: {
            "alertname": "KubePodCrashLooping",
            "namespace": "prod",
            "severity": "critical",
            "pod": "x",
            **d,
        }
    ),
    st.dictionaries(any_text, any_text, max_size=3),
    st.sampled_from(["firing", "resolved"]),
    timestamps,
    timestamps,
    any_text,
    st.one_of(st.none(), st.text("0123456789abcdef", min_size=1, max_size=64)),
)


@SETTINGS
@given(st.lists(alerts_strategy, min_size=1, max_size=6), st.booleans())
def test_structured_deliveries(served: Served, alerts: list[dict[str, Any]], ascii_only: bool):
    body = json.dumps(payload(*alerts), ensure_ascii=ascii_only)
    _check(served, "webhook: structured", body.encode("utf-8", "surrogatepass"), alerts)


def _set_path(document: Any, path: list[int], value: Any) -> Any:
    """Replace the value at a path (indices into the sorted keys / items) with `value`."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    if isinstance(document, dict):
        key = sorted(document)[path[0] % len(document)]
        return {**document, key: _set_path(document[key], path[1:], value)}
    index = path[0] % len(document)
    return [*document[:index], _set_path(document[index], path[1:], value), *document[index + 1 :]]


@SETTINGS
@given(st.lists(st.integers(0, 50), min_size=1, max_size=5), json_values)
def test_mutated_deliveries(served: Served, path: list[int], value: Any):
    document = _set_path(payload(crashloop(), crashloop(pod="api-2")), path, value)
    body = json.dumps(document).encode()
    before = served.counts()
    status, answer = served.post("webhook: mutated", body)
    assert status < 500, answer
    if status != 200:
        assert served.counts() == before


@SETTINGS
@given(st.one_of(st.binary(max_size=300), json_scalars.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bodies(served: Served, body: bytes):
    before = served.counts()
    status, answer = served.post("webhook: raw bytes", body)
    assert status < 500, answer
    if status != 200:
        assert served.counts() == before
