"""The nmap adapter against the real nmap, on ports these tests open on 127.0.0.1."""

from __future__ import annotations

import pytest

from adapters.nmap import NmapAdapter, NmapError, valid_ports
from core.discovery.targets import expand_ports
from tests.discovery.helpers import closed_port, listening, port_of, require_nmap

pytestmark = pytest.mark.integration


@pytest.fixture
def adapter() -> NmapAdapter:
    require_nmap()
    return NmapAdapter()


def test_open_and_closed_ports_are_told_apart(adapter: NmapAdapter) -> None:
    shut = closed_port()
    with listening(2) as sockets:
        open_ports = sorted(port_of(s) for s in sockets)
        ports = ",".join(str(p) for p in [*open_ports, shut])
        outcome = adapter.scan(["127.0.0.1"], ports)
    [host] = outcome.data["hosts"]
    assert expand_ports(outcome.data["scanned"]) == {int(p) for p in ports.split(",")}
    assert host["address"] == "127.0.0.1" and host["up"] is True
    assert [p["port"] for p in host["ports"]] == open_ports
    assert all(p["protocol"] == "tcp" for p in host["ports"])
    assert outcome.summary == "1 of 1 hosts up" and outcome.request is None


def test_every_address_asked_for_is_in_the_result(adapter: NmapAdapter) -> None:
    with listening() as [s]:
        outcome = adapter.scan(["127.0.0.1", "127.0.0.2"], str(port_of(s)))
    hosts = outcome.data["hosts"]
    assert [h["address"] for h in hosts] == ["127.0.0.1", "127.0.0.2"]
    # The socket listens on 127.0.0.1 only; 127.0.0.2 answers (loopback) with nothing open.
    assert hosts[0]["ports"] and hosts[1]["ports"] == []


def test_service_names_come_from_nmaps_table(adapter: NmapAdapter) -> None:
    """Without -sV the name is nmap's for the port number: PostgreSQL runs here on 5432."""
    outcome = adapter.scan(["127.0.0.1"], "5432")
    assert outcome.data["hosts"][0]["ports"] == [
        {"port": 5432, "protocol": "tcp", "service": "postgresql", "product": None, "version": None}
    ]


def test_the_ports_nmap_chose_are_reported(adapter: NmapAdapter) -> None:
    """`--top-ports`: which ports were looked at comes from nmap (a port not looked at is
    neither open nor closed)."""
    outcome = adapter.scan(["127.0.0.1"])
    scanned = outcome.data["scanned"]
    assert scanned.startswith("7,9,13,21-23,25") and "5432" in scanned


def test_the_arguments_are_a_connect_scan_with_bounds(adapter: NmapAdapter) -> None:
    args = adapter.arguments(None, services=False, ipv6=False)
    assert args[:2] == ["-sT", "-T4"] and "--host-timeout" in args and "--top-ports" in args
    light = adapter.arguments("22", services=True, ipv6=True)
    assert light[4:6] == ["-p", "22"] and "--version-light" in light and light[-1] == "-6"
    adapter.close()


@pytest.mark.parametrize(
    "addresses",
    [["-iL /etc/passwd"], ["127.0.0.1 -oN out.txt"], ["localhost"], ["127.0.0.1;id"], []],
)
def test_anything_but_addresses_is_refused_before_nmap(
    adapter: NmapAdapter, addresses: list[str], popen_spy: list[list[str]]
) -> None:
    with pytest.raises(NmapError) as caught:
        adapter.scan(addresses, "22")
    assert caught.value.reason == "invalid" and popen_spy == []


@pytest.mark.parametrize("ports", ["-p-", "22 -iL x", "0", "70000", "90-80", "22,,80", ""])
def test_bad_ports_are_refused_before_nmap(
    adapter: NmapAdapter, ports: str, popen_spy: list[list[str]]
) -> None:
    assert not valid_ports(ports)
    with pytest.raises(NmapError):
        adapter.scan(["127.0.0.1"], ports)
    assert popen_spy == []


def test_health_names_the_binary_and_its_version(adapter: NmapAdapter) -> None:
    ok, detail = adapter.health()
    assert ok and detail.startswith("nmap 7.") and "/nmap" in detail


def test_no_binary_is_not_configured() -> None:
    from adapters.nmap import NmapNotConfigured

    with pytest.raises(NmapNotConfigured):
        NmapAdapter(nmap_path="no-such-nmap-binary")


def test_status_shows_nmap_and_its_version() -> None:
    require_nmap()
    from core.execution.integrations import Integrations
    from tests.conftest import make_settings

    integrations = Integrations(make_settings("sqlite+aiosqlite:///:memory:"))
    try:
        health = integrations.health("nmap")
    finally:
        integrations.close()
    assert health.state == "ok" and health.detail.startswith("nmap 7.")
