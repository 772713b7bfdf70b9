"""The assistant's `assets_list` and `nmap_scan`: the same checks as `/infraai scan`, the asker
from the run's context, the registry's output caps; the real nmap on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from core.agent.tools import TOOLS, ToolContext
from core.execution.integrations import Integrations
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.discovery.helpers import Spy, label, listening, port_of, require_nmap, service_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def scanner(db_url: str) -> AsyncIterator[tuple[Runtime, Spy]]:
    require_nmap()
    import core.agent.assistant  # registers every tool, as the assistant does

    assert core.agent.assistant
    spy = Spy()
    settings = make_settings(db_url)
    runtime = Runtime.build(settings, integrations=Integrations(settings, nmap=spy.factory))
    yield runtime, spy
    await runtime.close()


class Said:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, text: str) -> None:
        self.lines.append(text)


async def test_the_assistant_scans_and_lists_what_it_found(scanner) -> None:
    runtime, spy = scanner
    said = Said()
    context = ToolContext(user="U0ALICE", conversation="c", progress=said)
    assert (await TOOLS.call(runtime, "assets_list", {}, context)).status == "no data"
    with listening() as [s]:
        port = port_of(s)
        result = await TOOLS.call(
            runtime, "nmap_scan", {"targets": "127.0.0.1", "ports": str(port)}, context
        )
    assert result.status == "ok", result
    assert result.data["up"] == [
        {"address": "127.0.0.1", "hostname": "localhost", "open": [label(port)]}
    ]
    assert said.lines[0] == f"scanning 127.0.0.1, ports {port}…"
    listed = await TOOLS.call(runtime, "assets_list", {"filter": "127.0.0.0/24"}, context)
    assert listed.status == "ok" and listed.data[0]["address"] == "127.0.0.1"
    [row] = json.loads(listed.render(4000))["data"]
    service = {"service": service_of(port)} if service_of(port) else {}
    assert row["open_ports"] == [{"port": port, "protocol": "tcp", **service}]
    assert spy.scans == [(["127.0.0.1"], str(port))]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"targets": "10.0.0.1"}, "outside the ranges"),
        ({"targets": "127.0.0.1 10.0.0.1"}, "One target per scan"),
        ({"targets": "127.0.0.1, 10.0.0.1"}, "One target per scan"),
        ({"targets": "-iL /etc/passwd"}, "bad arguments: targets"),
        ({"targets": "127.0.0.1;id"}, "bad arguments: targets"),
        ({"targets": "127.0.0.1", "ports": "22 -sV"}, "bad arguments: ports"),
        ({"targets": "127.0.0.0/16"}, "a scan covers at most 256"),
    ],
)
async def test_the_same_checks_refuse_before_nmap_starts(
    scanner, arguments, message, popen_spy
) -> None:
    runtime, spy = scanner
    context = ToolContext(user="U0ALICE", conversation="c")
    result = await TOOLS.call(runtime, "nmap_scan", arguments, context)
    assert result.status == "error" and message in result.message, result
    assert spy.built == 0 and popen_spy == []


async def test_many_assets_are_capped_with_a_hint(scanner) -> None:
    from core.db.types import utcnow
    from core.discovery import store

    runtime, _spy = scanner
    hosts = [
        {
            "address": f"127.0.{i // 250}.{i % 250 + 1}",
            "up": True,
            "hostname": f"host-{i}",
            "mac": None,
            "vendor": None,
            "ports": [{"port": 22, "protocol": "tcp", "service": "ssh"}],
        }
        for i in range(300)
    ]
    async with runtime.sessions() as session, session.begin():
        await store.upsert_up(session, hosts, utcnow())
    result = await TOOLS.call(runtime, "assets_list", {}, ToolContext(user="U", conversation="c"))
    assert len(result.data) == 100 and "200 more not shown" in result.message
    assert "narrow your query" in result.render(2000)
