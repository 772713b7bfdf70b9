"""`/infraai scan` and `assets` in core: refusals before nmap starts, the real nmap on ports
these tests open on 127.0.0.1, `assets` upserted on both backends, and what changed."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from core import commands as c
from core.commands import run_command
from core.db.types import utcnow
from core.discovery import store
from core.discovery.scan import GATE, MAX_SCANS
from core.execution.integrations import Integrations
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.discovery.helpers import Spy, closed_port, label, listening, port_of, require_nmap
from tests.helpers import count, rows


class Steps:
    """A surface's progress hook: what it was told, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def start(self, text: str) -> None:
        self.lines.append(f"start {text}")

    async def step(self, text: str) -> None:
        self.lines.append(f"step {text}")


async def resolve_outside(name: str) -> list[str]:
    return {"inside.test": ["127.0.0.9"], "mixed.test": ["127.0.0.1", "10.0.0.1"]}.get(
        name, ["10.0.0.1"]
    )


@pytest.fixture
def spy() -> Spy:
    require_nmap()
    return Spy()


@pytest.fixture
async def scanner(db_url: str, spy: Spy) -> AsyncIterator[Runtime]:
    settings = make_settings(db_url, scan_max_addresses=16)
    runtime = Runtime.build(settings, integrations=Integrations(settings, nmap=spy.factory))
    yield runtime
    await runtime.close()


async def scan(runtime: Runtime, line: str, steps: Steps | None = None, user: str = "U0A") -> Any:
    return await run_command(
        runtime, user, f"scan {line}", scan_progress=steps, resolve=resolve_outside
    )


REFUSED = {
    "10.0.0.1": "outside the ranges",
    "-oN out.txt": "nmap options cannot be given",
    "127.0.0.1;id": "letters, digits",
    "'$(id)'": "letters, digits",
    "$(id)": "letters, digits",
    "127.0.0.1 -iL /etc/passwd": "nmap options cannot be given",
    "127.0.0.1 10.0.0.1": "One target per scan",
    "127.0.0.1,10.0.0.1": "letters, digits",
    "'127.0.0.1 10.0.0.1'": "no spaces",
    "outside.test": "resolves to 10.0.0.1, which is outside",
    "mixed.test": "resolves to 10.0.0.1, which is outside",
    "127.0.0.0/24": "has 256 addresses; a scan covers at most 16",
    "10.0.0.0/30": "outside the ranges",
    "127.0.0.1 99999": "not a port list",
    "127.0.0.1 22 -sV": "nmap options cannot be given",
    "": "Scan what?",
    "bad_name!": "letters, digits",
    "::1": "outside the ranges",
    "127.0.0.1 22 services services": "One target per scan",
}


@pytest.mark.integration
@pytest.mark.parametrize("line", list(REFUSED))
async def test_refused_before_nmap_starts(
    scanner: Runtime, spy: Spy, line: str, popen_spy: list[list[str]]
) -> None:
    steps = Steps()
    reply = await scan(scanner, line, steps)
    assert isinstance(reply, c.Error), reply
    assert REFUSED[line] in reply.text and reply.usage and not reply.public
    # nmap was not started: no adapter built, no scan asked, no process at all.
    assert spy.built == 0 and spy.scans == [] and popen_spy == []
    assert steps.lines == []
    assert await count(scanner, "scans") == 0 and await count(scanner, "assets") == 0


@pytest.mark.integration
async def test_a_scan_finds_open_ports_and_a_second_updates_and_says_what_changed(
    scanner: Runtime, spy: Spy
) -> None:
    shut = closed_port()
    with listening(2) as (kept, dropped):
        gone = port_of(dropped)
        first_ports = f"{port_of(kept)},{gone},{shut}"
        steps = Steps()
        reply = await scan(scanner, f"127.0.0.1 {first_ports}", steps)
        assert isinstance(reply, c.ScanReport), reply
        assert steps.lines[0] == f"start 🔎 scanning 127.0.0.1, ports {first_ports}…"
        assert steps.lines[1].startswith("step 1/1 scanned:\n127.0.0.1 (localhost): ")
        assert "1 of 1 hosts up, 2 open ports" in reply.text
        assert "First scan of these addresses" in reply.text
        async with scanner.sessions() as session:
            [asset] = await store.list_assets(session)
        assert (asset.address, asset.hostname, asset.up) == ("127.0.0.1", "localhost", True)
        assert sorted(p["port"] for p in asset.ports) == sorted([port_of(kept), gone])
        dropped.close()
        with listening() as [new]:
            opened = port_of(new)
            second_ports = f"{port_of(kept)},{gone},{opened}"
            again = await scan(scanner, f"127.0.0.1 {second_ports}")
    assert isinstance(again, c.ScanReport)
    assert f"Opened on 127.0.0.1: {opened}/tcp" in again.text
    assert f"Closed on 127.0.0.1: {gone}/tcp" in again.text
    assert await count(scanner, "assets") == 1  # updated, never duplicated
    history = await rows(
        scanner, "SELECT status, addresses, hosts_up, target FROM scans ORDER BY id"
    )
    assert [dict(r) for r in history] == [
        {"status": "done", "addresses": 1, "hosts_up": 1, "target": "127.0.0.1"}
    ] * 2
    assert [addresses for addresses, _ports in spy.scans] == [["127.0.0.1"], ["127.0.0.1"]]


@pytest.mark.integration
async def test_a_cidr_is_scanned_in_chunks_with_progress(
    scanner: Runtime, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """127.0.0.0/28: 14 hosts, every loopback address answers (no down host on loopback)."""
    from core.discovery import scan as scan_module

    monkeypatch.setattr(scan_module, "CHUNK", 5)
    steps = Steps()
    with listening(1, "127.0.0.3") as [s]:
        port = port_of(s)
        reply = await scan(scanner, f"127.0.0.0/28 {port}", steps)
    assert isinstance(reply, c.ScanReport)
    assert [len(a) for a, _p in spy.scans] == [5, 5, 4]
    assert [line.split(":")[0] for line in steps.lines[1:]] == [
        "step 5/14 scanned",
        "step 10/14 scanned",
        "step 14/14 scanned",
    ]
    assert f"127.0.0.3: {label(port)}" in steps.lines[1]
    assert await count(scanner, "assets") == 14
    listed = await run_command(scanner, "U0A", "assets 127.0.0.0/30")
    assert isinstance(listed, c.AssetList)
    [(subnet, views)] = listed.groups
    assert subnet == "127.0.0.0/24"
    assert [v.address for v in views] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


@pytest.mark.integration
async def test_a_hostname_is_scanned_by_its_checked_address(scanner: Runtime, spy: Spy) -> None:
    reply = await scan(scanner, "inside.test 22")
    assert isinstance(reply, c.ScanReport)
    assert spy.scans == [(["127.0.0.9"], "22")]  # the address checked, never the name
    [row] = await rows(scanner, "SELECT target FROM scans")
    assert row["target"] == "inside.test"


@pytest.mark.integration
async def test_one_scan_at_a_time_per_requester_and_a_global_bound(
    scanner: Runtime, spy: Spy
) -> None:
    with GATE.claim("U0A"):
        reply = await scan(scanner, "127.0.0.1 22", user="U0A")
        assert isinstance(reply, c.Error) and "You have a scan running" in reply.text
        others = [f"U0X{i}" for i in range(MAX_SCANS - 1)]
        for other in others:
            GATE._running.add(other)
        try:
            busy = await scan(scanner, "127.0.0.1 22", user="U0B")
            assert isinstance(busy, c.Error) and f"at most {MAX_SCANS} at once" in busy.text
        finally:
            for other in others:
                GATE._running.discard(other)
    assert spy.scans == []
    assert isinstance(await scan(scanner, "127.0.0.1 22", user="U0A"), c.ScanReport)


async def test_known_hosts_that_stop_answering_are_down_and_unknown_ones_not_added(
    runtime: Runtime,
) -> None:
    """Loopback cannot be down, so the scan's result is given here as nmap reports it."""
    now = utcnow()

    def host(address: str, up: bool, *ports: int) -> dict[str, Any]:
        found = [{"port": p, "protocol": "tcp", "service": None} for p in ports]
        return {
            "address": address,
            "up": up,
            "hostname": None,
            "mac": None,
            "vendor": None,
            "ports": found,
        }

    async with runtime.sessions() as session, session.begin():
        changed, known = await store.record(
            session, [host("127.0.0.1", True, 22), host("127.0.0.2", True, 80)], now
        )
    assert known == 0 and changed.new_hosts == ["127.0.0.1", "127.0.0.2"]
    later = now + timedelta(minutes=5)
    async with runtime.sessions() as session, session.begin():
        changed, known = await store.record(
            session,
            [host("127.0.0.1", True, 22, 443), host("127.0.0.2", False), host("127.0.0.3", False)],
            later,
        )
    assert known == 2
    assert changed.as_dict() == {
        "new_hosts": [],
        "opened": {"127.0.0.1": ["443/tcp"]},
        "closed": {},
        "down": ["127.0.0.2"],
        "back_up": [],
    }
    async with runtime.sessions() as session:
        views = await store.list_assets(session)
    assert [(v.address, v.up) for v in views] == [("127.0.0.1", True), ("127.0.0.2", False)]
    assert views[0].last_seen == later and views[0].first_seen == now
    assert views[1].last_seen == now  # when it last answered
    async with runtime.sessions() as session, session.begin():
        changed, _ = await store.record(session, [host("127.0.0.2", True, 80)], later)
    assert changed.back_up == ["127.0.0.2"] and not changed.opened


async def test_a_bulk_upsert_of_many_hosts_keeps_one_row_each(runtime: Runtime) -> None:
    """Over the batch sizes of both backends; a second pass updates every row in place."""
    network = ipaddress.ip_network("127.1.0.0/20")
    hosts = [
        {
            "address": str(a),
            "up": True,
            "hostname": f"h{i}",
            "mac": None,
            "vendor": None,
            "ports": [{"port": 22, "protocol": "tcp", "service": "ssh"}],
        }
        for i, a in enumerate(network)
    ][:1200]
    for _ in range(2):
        async with runtime.sessions() as session, session.begin():
            await store.upsert_up(session, hosts, utcnow())
    assert await count(runtime, "assets") == 1200
    async with runtime.sessions() as session:
        ssh = await store.list_assets(session, "ssh")
        named = await store.list_assets(session, "h1199")
    assert len(ssh) == 1200 and [v.address for v in named] == [hosts[1199]["address"]]


@pytest.mark.integration
async def test_ports_a_scan_did_not_look_at_are_neither_closed_nor_forgotten(
    scanner: Runtime,
) -> None:
    with listening(2) as (a, b):
        both = f"{port_of(a)},{port_of(b)}"
        assert isinstance(await scan(scanner, f"127.0.0.1 {both}"), c.ScanReport)
        only_a = await scan(scanner, f"127.0.0.1 {port_of(a)}")
        assert isinstance(only_a, c.ScanReport)
        assert "No change since the last scan." in only_a.text
        async with scanner.sessions() as session:
            [asset] = await store.list_assets(session)
        assert sorted(p["port"] for p in asset.ports) == sorted([port_of(a), port_of(b)])
        # nmap's own choice of ports (--top-ports, which the test's ports are not among):
        # what it looked at comes from nmap, and the test's ports stay open.
        common = await scan(scanner, "127.0.0.1")
        assert isinstance(common, c.ScanReport) and "Closed on" not in common.text
        async with scanner.sessions() as session:
            [asset] = await store.list_assets(session)
        assert {port_of(a), port_of(b)} <= {p["port"] for p in asset.ports}


def test_a_port_outside_the_scanned_ones_is_kept() -> None:
    before = {"127.0.0.1": store.Known(True, ({"port": 22, "protocol": "tcp"},))}
    host = {
        "address": "127.0.0.1",
        "up": True,
        "hostname": None,
        "mac": None,
        "vendor": None,
        "ports": [{"port": 80, "protocol": "tcp"}],
    }
    assert store.changes(before, [host], frozenset({80})).as_dict()["closed"] == {}
    assert store.changes(before, [host], frozenset({22, 80})).closed == {"127.0.0.1": ["22/tcp"]}
    [kept] = store.merged(before, [host], frozenset({80}))
    assert [p["port"] for p in kept["ports"]] == [22, 80]


@pytest.mark.integration
async def test_services_asks_nmap_what_answers(scanner: Runtime) -> None:
    """`services`: light version detection, here on the PostgreSQL and Redis the tests run."""
    reply = await scan(scanner, "127.0.0.1 5432,6379 services")
    assert isinstance(reply, c.ScanReport), reply
    async with scanner.sessions() as session:
        [asset] = await store.list_assets(session)
    products = {p["port"]: p.get("product") for p in asset.ports}
    assert products == {5432: "PostgreSQL DB", 6379: "Redis key-value store"}
    assert asset.services() == "5432/postgresql, 6379/redis"


def test_discovery_loads_no_nmap_until_a_scan() -> None:
    """The commands, the scan's code and the assistant's tools import python-nmap only
    through the port, when a scan runs."""
    import subprocess
    import sys

    probe = (
        "import sys, core.commands, core.discovery.scan, core.discovery.store, "
        "core.agent.discovery_tools; print('nmap' in sys.modules, 'adapters.nmap' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


class Broken:
    """A progress line that cannot be shown (Slack rate-limited, a closed SSE stream)."""

    async def start(self, text: str) -> None:
        raise RuntimeError("ratelimited")

    async def step(self, text: str) -> None:
        raise RuntimeError("message_not_found")


@pytest.mark.integration
async def test_a_progress_line_that_fails_neither_strands_nor_stops_the_scan(
    scanner: Runtime,
) -> None:
    with listening() as [sock]:
        reply = await scan(scanner, f"127.0.0.1 {port_of(sock)}", Broken())  # type: ignore[arg-type]
    assert isinstance(reply, c.ScanReport), reply
    [row] = await rows(scanner, "SELECT status FROM scans")
    assert row["status"] == "done"
    assert await count(scanner, "assets") == 1


@pytest.mark.integration
async def test_a_name_that_does_not_resolve_in_time_is_refused(
    scanner: Runtime, monkeypatch
) -> None:
    import asyncio

    from core.discovery import scan as scan_module

    monkeypatch.setattr(scan_module, "RESOLVE_TIMEOUT", 0.05)

    async def slow(name: str) -> list[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    reply = await run_command(scanner, "U0A", "scan slow.test", resolve=slow)
    assert isinstance(reply, c.Error) and "did not resolve" in reply.text, reply
    assert await count(scanner, "scans") == 0
