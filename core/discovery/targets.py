"""What `/infraai scan` and the assistant's `nmap_scan` may scan, decided before nmap starts.

One target per scan — an IP address, a CIDR or a hostname — with optional ports and the word
`services`. The target is checked against a short alphabet first (nothing starting with `-`,
no spaces, no shell metacharacters: python-nmap splits hosts into nmap's argument vector, so
`-iL /etc/passwd` would be an option), then against `SCAN_ALLOWED_CIDRS` and
`SCAN_MAX_ADDRESSES`. A hostname is resolved here and every address it has must be allowed;
the addresses are what is scanned, never the name, so DNS cannot answer differently between
the check and the scan.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Awaitable[list[str]]]

SERVICES = "services"
_ALPHABET = re.compile(r"[0-9A-Za-z:][0-9A-Za-z.:/-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_PORTS = re.compile(r"\d{1,5}(?:-\d{1,5})?(?:,\d{1,5}(?:-\d{1,5})?)*")
USAGE = "scan <host|cidr> [ports] [services]"


class ScanRefused(ValueError):
    """The request is not scanned; `str()` says why, to the person who asked."""


@dataclass(frozen=True)
class ScanRequest:
    target: str  # as typed
    addresses: tuple[str, ...]  # the checked addresses: what nmap is given
    ports: str | None = None  # nmap's list syntax; None: its most common ports
    services: bool = False  # service and version detection (slower)


def valid_ports(text: str) -> bool:
    """`22`, `22,80`, `8000-8100`: ports only, each in 1–65535, ranges ascending."""
    if not _PORTS.fullmatch(text):
        return False
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not 1 <= int(low) <= int(high or low) <= 65535:
            return False
    return True


def expand_ports(text: str) -> frozenset[int]:
    """`22,80,8000-8002` → {22, 80, 8000, 8001, 8002} (nmap's list syntax, as it reports
    the ports it scanned)."""
    found: set[int] = set()
    for part in text.split(","):
        if part.strip():
            low, _, high = part.partition("-")
            found.update(range(int(low), int(high or low) + 1))
    return frozenset(found)


async def system_resolver(name: str) -> list[str]:
    """The name's addresses (IPv4 and IPv6), from the system resolver, off the loop."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def _allowed(address: Address, allowed: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in allowed)


def _ranges(allowed: Sequence[Network]) -> str:
    return ", ".join(str(net) for net in allowed) or "none"


def split_arguments(args: Sequence[str]) -> tuple[str, str | None, bool]:
    """(target, ports, services) from the command's words; anything else is refused."""
    if not args:
        raise ScanRefused("Scan what? Give one address, CIDR or hostname.")
    target, *rest = args
    if target.startswith("-"):
        raise ScanRefused(f"`{target}` is not a target: nmap options cannot be given.")
    ports: str | None = None
    services = False
    for word in rest:
        if word.lower() == SERVICES and not services:
            services = True
        elif ports is None and valid_ports(word):
            ports = word
        elif word.startswith("-"):
            raise ScanRefused(f"`{word}` is not allowed: nmap options cannot be given.")
        elif _PORTS.fullmatch(word):
            raise ScanRefused(f"`{word}` is not a port list: ports are 1–65535, low-high.")
        else:
            raise ScanRefused("One target per scan (then optional ports, e.g. 22,80,8000-8100).")
    return target, ports, services


async def check(
    args: Sequence[str],
    allowed: Sequence[Network],
    max_addresses: int,
    resolve: Resolver = system_resolver,
) -> ScanRequest:
    """The request to scan, every address checked; ScanRefused with the reason if not."""
    target, ports, services = split_arguments(args)
    return ScanRequest(
        target, await addresses_of(target, allowed, max_addresses, resolve), ports, services
    )


async def addresses_of(
    target: str,
    allowed: Sequence[Network],
    max_addresses: int,
    resolve: Resolver = system_resolver,
) -> tuple[str, ...]:
    """The addresses `target` stands for, each inside `allowed`, at most `max_addresses`."""
    if target.startswith("-"):
        raise ScanRefused(f"`{target}` is not a target: nmap options cannot be given.")
    if not _ALPHABET.fullmatch(target) or len(target) > 253:
        raise ScanRefused(
            "A target is one IP address, CIDR or hostname: letters, digits, `.`, `:`, `/`, "
            "`-` only, no spaces."
        )
    outside = f"is outside the ranges scans may cover ({_ranges(allowed)}: SCAN_ALLOWED_CIDRS)"
    if "/" in target:
        try:
            network = ipaddress.ip_network(target, strict=False)
        except ValueError:
            raise ScanRefused(f"`{target}` is not a CIDR (e.g. 10.0.0.0/24).") from None
        if network.num_addresses > max_addresses:
            raise ScanRefused(
                f"`{target}` has {network.num_addresses} addresses; a scan covers at most "
                f"{max_addresses} (SCAN_MAX_ADDRESSES)."
            )
        if not any(
            network.version == net.version and network.subnet_of(net)  # type: ignore[arg-type]
            for net in allowed
        ):
            raise ScanRefused(f"`{target}` {outside}.")
        hosts = list(network.hosts()) if network.num_addresses > 2 else list(network)
        return tuple(str(a) for a in hosts)
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        address = None
    if address is not None:
        if not _allowed(address, allowed):
            raise ScanRefused(f"`{target}` {outside}.")
        return (str(address),)
    if not _HOSTNAME.fullmatch(target) or target.replace(".", "").isdigit():
        raise ScanRefused(f"`{target}` is not an IP address, CIDR or hostname.")
    found = sorted({ipaddress.ip_address(a.split("%")[0]) for a in await resolve(target)}, key=_key)
    if not found:
        raise ScanRefused(f"`{target}` does not resolve.")
    refused = [a for a in found if not _allowed(a, allowed)]
    if refused:
        raise ScanRefused(f"`{target}` resolves to {refused[0]}, which {outside}.")
    if len(found) > max_addresses:
        raise ScanRefused(f"`{target}` has more than {max_addresses} addresses.")
    return tuple(str(a) for a in found)


def _key(address: Address) -> tuple[int, int]:
    return address.version, int(address)
