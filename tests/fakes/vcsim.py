"""Build and run vcsim (govmomi's vCenter simulator) for the vSphere adapter's tests.

Debian's ``golang-github-vmware-govmomi-dev`` ships the simulator package but no ``vcsim``
command, so ``tests/fakes/vcsim/main.go`` is a small main around it (see that file for what
it adds). It is built offline in GOPATH mode, once per content of main.go, Go and govmomi:
the binary is cached as ``~/.cache/infraai/vcsim-<hash>`` (``$XDG_CACHE_HOME`` respected), so
only the first run pays the ~20 s compile.

Usage::

    with run_vcsim(tools=["DC0_H0_VM0"]) as sim:
        adapter = VSphereAdapter(host=sim.host, user=sim.user, password=sim.password,
                                 insecure=True)

The simulator listens on a port the kernel picks on 127.0.0.1 (no race over "free" ports),
serves HTTPS with a self-signed certificate, accepts only ``sim.user``/``sim.password``, and
is killed on exit — or exits by itself if this process dies, as it watches its stdin.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

MAIN_GO = Path(__file__).with_name("vcsim") / "main.go"
GOPATH = Path("/usr/share/gocode")
GOVMOMI_SIMULATOR = GOPATH / "src/github.com/vmware/govmomi/simulator"
SKIP_REASON = (
    "vcsim needs Debian's golang-go and golang-github-vmware-govmomi-dev: "
    "apt-get install -y golang-go golang-github-vmware-govmomi-dev"
)
START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Vcsim:
    """A running simulator: what a client needs to reach it."""

    host: str  # "127.0.0.1:PORT", as VSPHERE_HOST takes it
    port: int
    user: str
    password: str
    url: str  # https://127.0.0.1:PORT/sdk
    process: subprocess.Popen[bytes]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infraai"


def _toolchain() -> str:
    go = shutil.which("go")
    if not go or not (GOVMOMI_SIMULATOR / "model.go").is_file():
        pytest.skip(SKIP_REASON)
    return go


def build_vcsim() -> Path:
    """The vcsim binary, compiled on first use and cached; skips the test without Go/govmomi."""
    go = _toolchain()
    version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    digest = hashlib.sha256()
    digest.update(MAIN_GO.read_bytes())
    digest.update(version.encode())
    digest.update(str((GOVMOMI_SIMULATOR / "model.go").stat().st_mtime_ns).encode())
    cache = cache_dir()
    binary = cache / f"vcsim-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    # Two test processes (xdist, two checkouts) may build at once: one builds, the other waits.
    with (cache / "vcsim.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        env = {
            **os.environ,
            "GOPATH": str(GOPATH),
            "GO111MODULE": "off",
            "GOPROXY": "off",
            "GOFLAGS": "",
            "GOCACHE": str(cache / "go-build"),
        }
        partial = cache / f".{binary.name}.{os.getpid()}.tmp"
        build = subprocess.run(
            [go, "build", "-o", str(partial), MAIN_GO.name],
            cwd=MAIN_GO.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if build.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"building vcsim failed:\n{build.stdout}{build.stderr}")
        os.replace(partial, binary)  # atomic: nobody runs a half-written binary
        _prune(cache, keep=binary)
    return binary


def _prune(cache: Path, *, keep: Path, max_age: float = 7 * 86400) -> None:
    """Drop binaries of older main.go versions (25 MB each) unused for a week."""
    now = time.time()
    for old in cache.glob("vcsim-*"):
        with contextlib.suppress(OSError):
            if old != keep and now - old.stat().st_atime > max_age:
                old.unlink()


@contextlib.contextmanager
def run_vcsim(
    *,
    user: str = "infraai",
    password: str | None = None,
    vms: int = 2,
    tools: Iterable[str] = (),
    stuck: Iterable[str] = (),
) -> Iterator[Vcsim]:
    """Start vcsim on 127.0.0.1 and stop it after.

    The VPX model has one datacenter DC0 with a standalone host DC0_H0 and a cluster DC0_C0;
    ``vms`` VMs per host/pool are named ``DC0_H0_VM<i>`` and ``DC0_C0_RP0_VM<i>``, all powered
    on. ``tools``: VMs whose VMware Tools run while powered on (vcsim's default is none).
    ``stuck``: VMs whose power tasks never finish.
    """
    binary = build_vcsim()
    password = password or secrets.token_urlsafe(12)
    args = [
        str(binary),
        "-listen=127.0.0.1:0",
        f"-username={user}",
        f"-password={password}",
        f"-vm={vms}",
        f"-tools={','.join(tools)}",
        f"-stuck={','.join(stuck)}",
        "-exit-on-eof",
    ]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            url = _wait_for_url(process, stderr)
            port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            yield Vcsim(
                host=f"127.0.0.1:{port}",
                port=port,
                user=user,
                password=password,
                url=url,
                process=process,
            )
        finally:
            _stop(process)


def _wait_for_url(process: subprocess.Popen[bytes], stderr: IO[bytes]) -> str:
    """main.go prints the URL once the server listens: that line is the readiness signal."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline().decode().strip()
            if line.startswith("https://"):
                return line
        if process.poll() is not None:
            break
    _stop(process)
    stderr.seek(0)
    output = stderr.read().decode(errors="replace")
    raise RuntimeError(f"vcsim did not start (exit code {process.returncode}):\n{output}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(OSError):
            process.stdin.close()  # -exit-on-eof: shuts down cleanly, removing its temp dirs
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
