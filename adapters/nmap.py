"""nmap: TCP connect scans of addresses the caller has already checked, through python-nmap.

python-nmap is synchronous and runs the `nmap` binary as a child process: callers on an
event loop run `scan` on a thread. The scan is `-sT` (a connect scan: no root needed), `-T4`,
with a per-host timeout, on explicit ports or nmap's most common ones (`--top-ports`), never
nmap's all-ports default. Service detection (`-sV`) is opt-in and light: nmap waits 6 s on
its first probe per service by default, so a copy of its probe file with a shorter wait is
passed with `--versiondb`.

Hosts and ports are checked again here, whatever the caller did: python-nmap splits both
into nmap's argument vector, so anything but an IP address or a port list could become an
option (`-iL /etc/passwd`). Imports nothing of InfraAI's.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nmap

__all__ = ["NmapAdapter", "NmapError", "NmapNotConfigured", "NmapOutcome", "valid_ports"]

TOP_PORTS = 100
HOST_TIMEOUT_SECONDS = 30
PROBES = Path("/usr/share/nmap/nmap-service-probes")
# nmap's default wait for a service's first answer is 6000 ms; 300 ms finds the same services
# on a LAN at a tenth of the time.
PROBE_WAIT_MS = 300
_PORTS = re.compile(r"\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*")


class NmapError(Exception):
    """A scan failed; `transient` when trying again later may succeed."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


class NmapNotConfigured(Exception):
    """No nmap binary on this machine."""


@dataclass(frozen=True)
class NmapOutcome:
    summary: str
    request: str | None
    data: Any = None
    dry_run: bool = False


def valid_ports(ports: str) -> bool:
    """A port list nmap reads as ports only: `22`, `22,80`, `8000-8100`, each in 1–65535."""
    if not _PORTS.fullmatch(ports):
        return False
    for part in ports.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 65535:
            return False
    return True


class NmapAdapter:
    def __init__(
        self,
        *,
        nmap_path: str | None = None,
        host_timeout: int = HOST_TIMEOUT_SECONDS,
        top_ports: int = TOP_PORTS,
    ) -> None:
        found = shutil.which(nmap_path or "nmap")
        if found is None:
            raise NmapNotConfigured(f"no {nmap_path or 'nmap'} binary on the PATH")
        self.nmap_path = found
        self.host_timeout = host_timeout
        self.top_ports = top_ports
        self._probes: str | None = None
        self._version: str | None = None
        self._lock = threading.Lock()

    def _scanner(self) -> Any:
        try:
            return nmap.PortScanner(nmap_search_path=(self.nmap_path,))
        except nmap.PortScannerError as exc:
            raise NmapError("unavailable", f"nmap cannot run: {exc}") from None

    def health(self) -> tuple[bool, str]:
        """The binary is there and runs; its version is asked once (`nmap -V` is a process),
        then only the file is checked."""
        if not os.access(self.nmap_path, os.X_OK):
            self._version = None
            return False, f"{self.nmap_path} is gone or not executable"
        if self._version is None:
            try:
                major, minor = self._scanner().nmap_version()
            except Exception as exc:
                return False, f"{self.nmap_path}: {type(exc).__name__}: {exc}"
            self._version = f"{major}.{minor}"
        return True, f"nmap {self._version} at {self.nmap_path}"

    def _probe_file(self) -> str | None:
        """nmap's service probes with a short first wait, written once per adapter."""
        with self._lock:
            if self._probes is None and PROBES.is_file():
                try:
                    text = re.sub(
                        r"(?m)^totalwaitms \d+", f"totalwaitms {PROBE_WAIT_MS}", PROBES.read_text()
                    )
                    with tempfile.NamedTemporaryFile(
                        "w", prefix="infraai-nmap-probes-", delete=False
                    ) as out:
                        out.write(text)
                except OSError:  # no writable temporary directory: nmap's own waits, slower
                    return None
                self._probes = out.name
            return self._probes

    def arguments(self, ports: str | None, *, services: bool, ipv6: bool) -> list[str]:
        """nmap's options for one scan (the hosts come separately)."""
        args = ["-sT", "-T4", "--host-timeout", f"{self.host_timeout}s"]
        args += ["-p", ports] if ports else ["--top-ports", str(self.top_ports)]
        if services:
            args += ["-sV", "--version-light"]
            probes = self._probe_file()
            if probes:
                args += ["--versiondb", probes]
        if ipv6:
            args.append("-6")
        return args

    def scan(
        self, addresses: Sequence[str], ports: str | None = None, *, services: bool = False
    ) -> NmapOutcome:
        """Scan `addresses` (IP addresses of one family) on `ports` (nmap's list syntax).

        `data["hosts"]` is one dict per address: `address`, `up`, `hostname`, `mac`,
        `vendor` and the open `ports` (`port`, `protocol`, `service`, `product`, `version`);
        an address nmap reports nothing for is down. `data["scanned"]` is the TCP ports nmap
        looked at, in its list syntax (`--top-ports` chooses them): a port outside it was
        not looked at, so it is neither open nor closed."""
        parsed = [_address(a) for a in addresses]
        if not parsed:
            raise NmapError("invalid", "no addresses to scan")
        if len({a.version for a in parsed}) > 1:
            raise NmapError("invalid", "IPv4 and IPv6 addresses are scanned separately")
        if ports is not None and not valid_ports(ports):
            raise NmapError("invalid", f"not a port list: {ports!r} (e.g. 22,80,8000-8100)")
        args = self.arguments(ports, services=services, ipv6=parsed[0].version == 6)
        targets = " ".join(str(a) for a in parsed)
        timeout = self.host_timeout * len(parsed) + 30
        try:
            result = self._scanner().scan(hosts=targets, arguments=" ".join(args), timeout=timeout)
        except nmap.PortScannerTimeout:
            raise NmapError(
                "timeout", f"nmap took longer than {timeout} s", transient=True
            ) from None
        except nmap.PortScannerError as exc:
            raise NmapError("error", f"nmap failed: {str(exc).strip()[:300]}") from None
        error = result.get("nmap", {}).get("scaninfo", {}).get("error")
        if error:
            detail = " ".join(str(e).strip() for e in error)
            raise NmapError("error", f"nmap failed: {detail[:300]}")
        found = result.get("scan", {})
        hosts = [_host(str(a), found.get(str(a))) for a in parsed]
        scanned = result.get("nmap", {}).get("scaninfo", {}).get("tcp", {}).get("services")
        up = sum(1 for host in hosts if host["up"])
        data: dict[str, Any] = {"hosts": hosts, "scanned": str(scanned or ports or "")}
        return NmapOutcome(f"{up} of {len(hosts)} hosts up", None, data)

    def close(self) -> None:
        with self._lock:
            probes, self._probes = self._probes, None
        if probes:
            Path(probes).unlink(missing_ok=True)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise NmapError("invalid", f"not an IP address: {text!r}") from None


def _name(service: Any) -> str | None:
    """nmap's service name; its table calls many ports "unknown", which is no name."""
    return str(service) if service and service != "unknown" else None


def _host(address: str, found: Any) -> dict[str, Any]:
    if not found or found.get("status", {}).get("state") != "up":
        return {
            "address": address,
            "up": False,
            "hostname": None,
            "mac": None,
            "vendor": None,
            "ports": [],
        }
    names = [h.get("name") for h in found.get("hostnames", []) if h.get("name")]
    mac = found.get("addresses", {}).get("mac")
    vendor = found.get("vendor", {}).get(mac) if mac else None
    ports = []
    for protocol in ("tcp", "udp"):
        for port, info in sorted(found.get(protocol, {}).items()):
            if info.get("state") != "open":
                continue
            ports.append(
                {
                    "port": int(port),
                    "protocol": protocol,
                    "service": _name(info.get("name")),
                    "product": info.get("product") or None,
                    "version": info.get("version") or None,
                }
            )
    return {
        "address": address,
        "up": True,
        "hostname": names[0] if names else None,
        "mac": mac,
        "vendor": vendor,
        "ports": ports,
    }
