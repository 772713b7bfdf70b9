"""One discovery scan, from the checked request to the summary of what changed.

The addresses go to nmap in chunks (`CHUNK` at a time, on the adapter threads: python-nmap is
synchronous), so the person sees progress as hosts finish instead of silence for a /24. The
result is recorded in one transaction with the `scans` row that says what changed.

Bounds: one scan at a time per requester, and `MAX_SCANS` at once in the process (nmap's
connect scans are cheap on loopback, not on a LAN: two at once leave room for everything
else); a request over either bound is refused at once, not queued — a queued scan would
answer minutes later in a thread nobody watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from core.db.models import Scan
from core.db.types import utcnow
from core.discovery import store
from core.discovery.targets import (
    Resolver,
    ScanRefused,
    ScanRequest,
    check,
    expand_ports,
    system_resolver,
)
from core.ports import IntegrationError, NotConfigured

log = logging.getLogger(__name__)

CHUNK = 16  # addresses per nmap run: a progress line each
MAX_SCANS = 2  # scans at once in this process
# A name whose DNS does not answer must not hold a scan slot, nor the loop's default
# executor threads (where getaddrinfo runs), for the resolver's own minutes.
RESOLVE_TIMEOUT = 10.0


class Progress(Protocol):
    """Where a surface shows a scan: `start` once the request is accepted, `step` per chunk."""

    async def start(self, text: str) -> None: ...
    async def step(self, text: str) -> None: ...


class _Gate:
    """Scans running now, by requester: at most one each and `limit` in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def claim(self, requester: str) -> Iterator[None]:
        with self._lock:
            if requester in self._running:
                raise ScanRefused("You have a scan running already; it answers in its thread.")
            if len(self._running) >= self.limit:
                raise ScanRefused(
                    f"{len(self._running)} scans are running (at most {self.limit} at once); "
                    "try again when one has finished."
                )
            self._running.add(requester)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(requester)


GATE = _Gate(MAX_SCANS)


@dataclass
class ScanResult:
    """What a scan found and changed."""

    scan_id: int
    request: ScanRequest
    hosts: list[dict[str, Any]]  # every scanned address: up or not, open ports
    changes: store.Changes
    first: bool = False  # no earlier scan had seen any of these addresses
    errors: list[str] = field(default_factory=list)

    @property
    def up(self) -> list[dict[str, Any]]:
        return [h for h in self.hosts if h["up"]]

    def summary(self) -> str:
        """Plain text for any surface (Slack escapes it): counts, then the changes."""
        req = self.request
        ports = f" ports {req.ports}" if req.ports else ""
        open_ports = plural(sum(len(h["ports"]) for h in self.up), "open port")
        lines = [
            f"Scan #{self.scan_id} of {req.target}{ports}: {len(self.up)} of "
            f"{len(self.hosts)} hosts up, {open_ports}."
        ]
        c = self.changes
        if self.first:
            lines.append("First scan of these addresses: everything found is new.")
        elif c.empty():
            lines.append("No change since the last scan.")
        else:
            if c.new_hosts:
                lines.append(f"New hosts: {', '.join(c.new_hosts)}")
            lines += [f"Opened on {a}: {', '.join(p)}" for a, p in c.opened.items()]
            lines += [f"Closed on {a}: {', '.join(p)}" for a, p in c.closed.items()]
            if c.down:
                lines.append(f"Gone down: {', '.join(c.down)}")
            if c.back_up:
                lines.append(f"Back up: {', '.join(c.back_up)}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scan": self.scan_id,
            "target": self.request.target,
            "ports": self.request.ports,
            "scanned": len(self.hosts),
            "up": [
                {
                    "address": h["address"],
                    "hostname": h["hostname"],
                    "open": [
                        f"{p['port']}/{p.get('service') or p['protocol']}" for p in h["ports"]
                    ],
                }
                for h in self.up
            ],
            "changes": self.changes.as_dict(),
        }


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def host_line(host: dict[str, Any]) -> str:
    """`127.0.0.1 (localhost): 22/ssh, 80/http`: one host as progress shows it."""
    name = f" ({host['hostname']})" if host.get("hostname") else ""
    ports = ", ".join(f"{p['port']}/{p.get('service') or p['protocol']}" for p in host["ports"])
    return f"{host['address']}{name}: {ports or 'no open ports'}"


def _chunks(addresses: Sequence[str]) -> Iterator[list[str]]:
    """`CHUNK` addresses at a time, one IP family per chunk (nmap scans IPv6 with `-6`)."""
    for version in (4, 6):
        family = [a for a in addresses if ipaddress.ip_address(a).version == version]
        for start in range(0, len(family), CHUNK):
            yield family[start : start + CHUNK]


async def run_scan(
    runtime: Any,
    requester: str,
    args: Sequence[str],
    progress: Progress | None = None,
    *,
    resolve: Resolver = system_resolver,
) -> ScanResult:
    """Check, scan, record. ScanRefused (nothing started) or IntegrationError (nmap failed;
    the `scans` row says so) with a message for the person who asked."""
    settings = runtime.settings
    integrations = runtime.integrations
    # The slot first: a person cannot start a second scan, nor resolve a second name, while
    # one of theirs is under way.
    with GATE.claim(requester):
        try:
            request = await asyncio.wait_for(
                check(
                    args, tuple(settings.scan_allowed_cidrs), settings.scan_max_addresses, resolve
                ),
                RESOLVE_TIMEOUT,
            )
        except TimeoutError:
            raise ScanRefused(
                f"{args[0] if args else 'The target'} did not resolve within "
                f"{RESOLVE_TIMEOUT:g} s; try its address"
            ) from None
        try:
            adapter = await integrations.run(integrations.nmap)
        except NotConfigured as exc:
            raise ScanRefused(str(exc)) from None
        scan_id = await _open(runtime, request, requester)
        hosts: list[dict[str, Any]] = []
        scanned: set[int] = set()
        try:
            if progress is not None:
                await _tell(progress.start, _start_text(request))
            for chunk in _chunks(request.addresses):
                with integrations.faults():
                    outcome = await integrations.run(
                        adapter.scan, chunk, request.ports, services=request.services
                    )
                found = outcome.data["hosts"]
                hosts.extend(found)
                scanned |= expand_ports(outcome.data["scanned"])
                if progress is not None:
                    await _tell(progress.step, _step_text(found, len(hosts), request))
        except IntegrationError as exc:
            await _close(runtime, scan_id, hosts, None, error=exc.message)
            raise
        except BaseException:
            await _close(runtime, scan_id, hosts, None, error="interrupted")
            raise
        changed, first = await _close(runtime, scan_id, hosts, utcnow(), frozenset(scanned))
    return ScanResult(scan_id, request, hosts, changed, first)


async def _tell(show: Any, text: str) -> None:
    """A progress line; one that cannot be shown (Slack rate-limited, the message gone, an
    HTTP stream closed) is logged, and the scan goes on: its result matters more."""
    try:
        await show(text)
    except Exception as exc:
        log.warning("scan progress not shown: %s: %s", type(exc).__name__, str(exc)[:200])


def _start_text(request: ScanRequest) -> str:
    count = len(request.addresses)
    what = request.target if count == 1 else f"{request.target} ({count} addresses)"
    ports = f"ports {request.ports}" if request.ports else "the most common ports"
    services = ", with service detection" if request.services else ""
    return f"🔎 scanning {what}, {ports}{services}…"


def _step_text(found: Sequence[dict[str, Any]], done: int, request: ScanRequest) -> str:
    up = [h for h in found if h["up"]]
    head = f"{done}/{len(request.addresses)} scanned"
    if not up:
        return f"{head}: no host up in this batch"
    return "\n".join([f"{head}:", *(host_line(h) for h in up)])


async def _open(runtime: Any, request: ScanRequest, requester: str) -> int:
    async with runtime.sessions() as session, session.begin():
        row = Scan(
            target=request.target,
            ports=request.ports,
            requested_by=requester,
            status="running",
            addresses=len(request.addresses),
            hosts_up=0,
            changes={},
        )
        session.add(row)
        await session.flush()
        return int(row.id)


async def _close(
    runtime: Any,
    scan_id: int,
    hosts: list[dict[str, Any]],
    now: datetime | None,
    scanned: frozenset[int] | None = None,
    *,
    error: str | None = None,
) -> tuple[store.Changes, bool]:
    """Record the result (when there is one) and finish the `scans` row, in one transaction.
    A failed scan records nothing in `assets`: half a /24 would mark the rest as unchanged."""
    changed = store.Changes()
    first = False
    async with runtime.sessions() as session, session.begin():
        if now is not None and error is None:
            changed, known_before = await store.record(session, hosts, now, scanned)
            first = known_before == 0
        await session.execute(
            sa.update(Scan)
            .where(Scan.id == scan_id)
            .values(
                status="failed" if error else "done",
                hosts_up=sum(1 for h in hosts if h["up"]),
                changes=changed.as_dict(),
                error=error,
                finished_at=utcnow(),
            )
        )
    return changed, first
