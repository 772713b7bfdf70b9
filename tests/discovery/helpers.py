"""Discovery test helpers: listening sockets on loopback, and an nmap that proves whether it ran.

Every scan in these tests targets 127.0.0.0/8. The real adapter runs the real nmap; the
`Spy` wraps it and records each scan, and `popen_spy` records every process python-nmap
starts, so a refused request can be shown not to have started nmap at all.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.nmap import NmapAdapter, NmapOutcome


def require_nmap() -> None:
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (apt-get install nmap)")


@contextmanager
def listening(count: int = 1, host: str = "127.0.0.1") -> Iterator[list[socket.socket]]:
    """`count` TCP sockets listening on `host`, on ports the system chooses."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            s.listen()
            sockets.append(s)
        yield sockets
    finally:
        for s in sockets:
            s.close()


def port_of(s: socket.socket) -> int:
    return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with listening() as [s]:
        return port_of(s)


@dataclass
class Spy:
    """The real adapter, with every scan and every build recorded."""

    built: int = 0
    scans: list[tuple[list[str], str | None]] = field(default_factory=list)
    adapter: NmapAdapter | None = None

    def factory(self) -> Any:
        self.built += 1
        self.adapter = NmapAdapter()
        spy = self

        class Recording:
            def scan(
                self, addresses: Sequence[str], ports: str | None = None, *, services: bool = False
            ) -> NmapOutcome:
                spy.scans.append((list(addresses), ports))
                assert spy.adapter is not None
                return spy.adapter.scan(addresses, ports, services=services)

            def health(self) -> tuple[bool, str]:
                assert spy.adapter is not None
                return spy.adapter.health()

            def close(self) -> None:
                assert spy.adapter is not None
                spy.adapter.close()

        return Recording()


def service_of(port: int) -> str | None:
    """nmap's name for a TCP port, from its own table (ephemeral ports the tests open may be
    in it); None where it has none or calls it "unknown"."""
    with open("/usr/share/nmap/nmap-services") as table:
        for line in table:
            fields = line.split("\t")
            if len(fields) > 1 and fields[1] == f"{port}/tcp":
                return None if fields[0] == "unknown" else fields[0]
    return None


def label(port: int) -> str:
    """`port/service` as progress and the summaries show an open port."""
    return f"{port}/{service_of(port) or 'tcp'}"
