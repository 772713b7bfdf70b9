"""`assets` from scans: a bulk upsert, and what changed since the last scan.

A scan of a /24 writes up to 256 rows, a synthetic benchmark 10,000: one statement per
batch, never an ORM object per host. PostgreSQL gets the rows as arrays (`unnest`) in one
`INSERT … ON CONFLICT (address) DO UPDATE`; SQLite a multi-row VALUES of the same upsert in
batches under its parameter limit. The address is the key: a second scan updates the row,
never adds one. An address that does not answer is recorded as down only if it was known:
a /24 sweep must not add 250 rows of nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Asset

SQLITE_BATCH = 500  # rows per statement: 8 parameters each, under SQLite's 32,766
PG_BATCH = 5000  # rows per unnest statement (arrays: one parameter per column)
READ_BATCH = 1000  # addresses per `IN (…)` when reading what was known


def port_label(port: dict[str, Any]) -> str:
    """`22/tcp`: how people name an open port."""
    return f"{port['port']}/{port.get('protocol', 'tcp')}"


@dataclass
class Changes:
    """What a scan changed: hosts never seen before, ports opened or closed on hosts seen
    before, known hosts that no longer answer, and known-down hosts that answer again."""

    new_hosts: list[str] = field(default_factory=list)
    opened: dict[str, list[str]] = field(default_factory=dict)
    closed: dict[str, list[str]] = field(default_factory=dict)
    down: list[str] = field(default_factory=list)
    back_up: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.new_hosts or self.opened or self.closed or self.down or self.back_up)

    def as_dict(self) -> dict[str, Any]:
        return {
            "new_hosts": self.new_hosts,
            "opened": self.opened,
            "closed": self.closed,
            "down": self.down,
            "back_up": self.back_up,
        }


@dataclass(frozen=True)
class Known:
    up: bool
    ports: tuple[dict[str, Any], ...]  # as stored

    def labels(self, scanned: frozenset[int] | None = None) -> set[str]:
        """The open ports' labels, only those among `scanned` TCP ports if given."""
        return {port_label(p) for p in self.ports if _looked_at(p, scanned)}


def _looked_at(port: dict[str, Any], scanned: frozenset[int] | None) -> bool:
    """Whether this scan looked at `port`: every port when `scanned` is None (the caller
    does not know), else the TCP ports in `scanned`."""
    if scanned is None:
        return True
    return port.get("protocol", "tcp") == "tcp" and int(port["port"]) in scanned


_PG_KNOWN = sa.text(
    "SELECT address, up, open_ports FROM assets WHERE address = ANY(CAST(:address AS varchar[]))"
).columns(Asset.address, Asset.up, Asset.open_ports)


async def known(session: AsyncSession, addresses: Sequence[str]) -> dict[str, Known]:
    """The recorded state of those of `addresses` already in `assets`."""
    found: dict[str, Known] = {}
    if session.get_bind().dialect.name == "postgresql":  # one array, not 1,000-item IN lists
        rows = await session.execute(_PG_KNOWN, {"address": list(addresses)})
        for address, up, ports in rows:
            found[address] = Known(bool(up), tuple(ports or ()))
        return found
    for start in range(0, len(addresses), READ_BATCH):
        batch = list(addresses[start : start + READ_BATCH])
        rows = await session.execute(
            sa.select(Asset.address, Asset.up, Asset.open_ports).where(Asset.address.in_(batch))
        )
        for address, up, ports in rows:
            found[address] = Known(bool(up), tuple(ports or ()))
    return found


def changes(
    before: dict[str, Known],
    hosts: Iterable[dict[str, Any]],
    scanned: frozenset[int] | None = None,
) -> Changes:
    """What `hosts` (one scan's result, up and down) change relative to `before`. A port
    this scan did not look at (not in `scanned`) has neither opened nor closed."""
    result = Changes()
    for host in hosts:
        address = host["address"]
        previous = before.get(address)
        if not host["up"]:
            if previous is not None and previous.up:
                result.down.append(address)
            continue
        if previous is None:
            result.new_hosts.append(address)
            continue
        if not previous.up:
            result.back_up.append(address)
        now = {port_label(p) for p in host["ports"]}
        if opened := sorted(now - previous.labels(), key=_port_key):
            result.opened[address] = opened
        if closed := sorted(previous.labels(scanned) - now, key=_port_key):
            result.closed[address] = closed
    return result


def _port_key(label: str) -> tuple[int, str]:
    number, _, protocol = label.partition("/")
    return int(number), protocol


def stored_ports(host: dict[str, Any]) -> list[dict[str, Any]]:
    """The open ports as stored: port, protocol, and what nmap knew of the service."""
    return [
        {k: v for k, v in port.items() if v is not None and k in _PORT_KEYS}
        for port in host["ports"]
    ]


_PORT_KEYS = ("port", "protocol", "service", "product", "version")

_PG_UPSERT = sa.text(
    """
    INSERT INTO assets (address, hostname, mac, vendor, open_ports, up, first_seen, last_seen)
    SELECT t.address, t.hostname, t.mac, t.vendor, t.ports::jsonb, true, :now, :now
    FROM unnest(
        CAST(:address AS varchar[]), CAST(:hostname AS varchar[]), CAST(:mac AS varchar[]),
        CAST(:vendor AS varchar[]), CAST(:ports AS text[])
    ) AS t(address, hostname, mac, vendor, ports)
    ON CONFLICT (address) DO UPDATE SET
        hostname = COALESCE(EXCLUDED.hostname, assets.hostname),
        mac = COALESCE(EXCLUDED.mac, assets.mac),
        vendor = COALESCE(EXCLUDED.vendor, assets.vendor),
        open_ports = EXCLUDED.open_ports,
        up = true,
        last_seen = EXCLUDED.last_seen
    """
).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))


async def upsert_up(session: AsyncSession, hosts: Sequence[dict[str, Any]], now: datetime) -> int:
    """Insert or update the hosts that answered (up, their open ports, last seen now; a name,
    MAC or vendor nmap did not report this time keeps the one recorded). Returns the rows."""
    up = [host for host in hosts if host["up"]]
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(up), PG_BATCH):
            batch = up[start : start + PG_BATCH]
            await session.execute(
                _PG_UPSERT,
                {
                    "address": [h["address"] for h in batch],
                    "hostname": [h.get("hostname") for h in batch],
                    "mac": [h.get("mac") for h in batch],
                    "vendor": [h.get("vendor") for h in batch],
                    "ports": [json.dumps(stored_ports(h)) for h in batch],
                    "now": now,
                },
            )
        return len(up)
    for start in range(0, len(up), SQLITE_BATCH):
        batch = up[start : start + SQLITE_BATCH]
        statement = sqlite_insert(Asset).values(
            [
                {
                    "address": h["address"],
                    "hostname": h.get("hostname"),
                    "mac": h.get("mac"),
                    "vendor": h.get("vendor"),
                    "open_ports": stored_ports(h),
                    "up": True,
                    "first_seen": now,
                    "last_seen": now,
                }
                for h in batch
            ]
        )
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Asset.address],
                set_={
                    "hostname": sa.func.coalesce(excluded.hostname, Asset.hostname),
                    "mac": sa.func.coalesce(excluded.mac, Asset.mac),
                    "vendor": sa.func.coalesce(excluded.vendor, Asset.vendor),
                    "open_ports": excluded.open_ports,
                    "up": True,
                    "last_seen": excluded.last_seen,
                },
            )
        )
    return len(up)


async def mark_down(session: AsyncSession, addresses: Sequence[str]) -> None:
    """Known hosts that did not answer: down (last seen stays when they last answered)."""
    for start in range(0, len(addresses), READ_BATCH):
        batch = list(addresses[start : start + READ_BATCH])
        await session.execute(sa.update(Asset).where(Asset.address.in_(batch)).values(up=False))


def merged(
    before: dict[str, Known], hosts: Sequence[dict[str, Any]], scanned: frozenset[int] | None
) -> list[dict[str, Any]]:
    """The hosts with the open ports recorded before that this scan did not look at kept:
    `scan host 22` must not forget that 443 was open."""
    if scanned is None:
        return list(hosts)
    out = []
    for host in hosts:
        previous = before.get(host["address"])
        if host["up"] and previous is not None:
            kept = [p for p in previous.ports if not _looked_at(p, scanned)]
            ports = sorted([*kept, *host["ports"]], key=lambda p: _port_key(port_label(p)))
            host = {**host, "ports": ports}
        out.append(host)
    return out


async def record(
    session: AsyncSession,
    hosts: Sequence[dict[str, Any]],
    now: datetime,
    scanned: frozenset[int] | None = None,
) -> tuple[Changes, int]:
    """One scan's result into `assets`: what it changed (read before writing), and how many
    of the addresses were known before (none: a first scan, where everything is new).
    `scanned`: the TCP ports the scan looked at (None: all the recorded ones)."""
    before = await known(session, [h["address"] for h in hosts])
    changed = changes(before, hosts, scanned)
    await upsert_up(session, merged(before, hosts, scanned), now)
    if changed.down:
        await mark_down(session, changed.down)
    return changed, len(before)


# ---- reading: the topology view --------------------------------------------------------


@dataclass(frozen=True)
class AssetView:
    address: str
    hostname: str | None
    mac: str | None
    vendor: str | None
    ports: list[dict[str, Any]]
    up: bool
    first_seen: datetime
    last_seen: datetime

    def services(self) -> str:
        """`22/ssh, 80/http`: the open ports as people read them."""
        return ", ".join(
            f"{p['port']}/{p.get('service') or p.get('protocol', 'tcp')}" for p in self.ports
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "hostname": self.hostname,
            "mac": self.mac,
            "vendor": self.vendor,
            "up": self.up,
            "open_ports": self.ports,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


def subnet_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address belongs to: the topology view's groups."""
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def matches(view: AssetView, needle: str) -> bool:
    """`needle` is an address or CIDR (hosts inside it), `up`/`down`, or a piece of text
    found in the address, hostname, vendor, a port number or a service name."""
    text = needle.strip().lower()
    if not text:
        return True
    if text in ("up", "down"):
        return view.up == (text == "up")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        network = None
    if network is not None:
        ip = ipaddress.ip_address(view.address)
        return ip.version == network.version and ip in network
    haystack = [view.address, view.hostname or "", view.vendor or "", view.mac or ""]
    for port in view.ports:
        haystack += [str(port.get("port", "")), str(port.get("service") or "")]
        haystack += [str(port.get("product") or "")]
    return any(text in item.lower() for item in haystack)


async def list_assets(session: AsyncSession, needle: str = "") -> list[AssetView]:
    """Every asset matching `needle`, in address order (numerically, IPv4 first)."""
    rows = (await session.scalars(sa.select(Asset))).all()
    views = [
        AssetView(
            row.address,
            row.hostname,
            row.mac,
            row.vendor,
            list(row.open_ports or []),
            bool(row.up),
            row.first_seen,
            row.last_seen,
        )
        for row in rows
    ]
    views = [v for v in views if matches(v, needle)]
    return sorted(views, key=lambda v: _address_key(v.address))


def _address_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def by_subnet(views: Sequence[AssetView]) -> list[tuple[str, list[AssetView]]]:
    """The views grouped by subnet, subnets in address order."""
    groups: dict[str, list[AssetView]] = {}
    for view in views:
        groups.setdefault(subnet_of(view.address), []).append(view)
    return list(groups.items())
