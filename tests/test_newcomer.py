"""A newcomer's first minutes, as the README tells them: a fresh clone, `make run` in a
terminal, the example alert posted, the proposal shown, `approve 1`, the result, `/infraai
status`, then Ctrl-C ends it.

The clone reuses this suite's virtualenv (`make run VENV=…`, its install stamp kept fresh) so
the test does not download the dependencies again; everything else is the README's path.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.peers.prometheus_stack import free_port

ROOT = Path(__file__).resolve().parent.parent


class Terminal:
    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.primary, secondary = pty.openpty()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=secondary, stdout=secondary, stderr=secondary,
            start_new_session=True,
        )  # fmt: skip
        os.close(secondary)
        self.seen = ""

    def expect(self, text: str, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds  # a hang guard, not a measurement
        while text not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never shown; the terminal said:\n{self.seen}")
            ready, _, _ = select.select([self.primary], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):  # the other side has closed
                    self.seen += os.read(self.primary, 65536).decode(errors="replace")
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.primary, line.encode() + b"\r")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.primary)


def test_the_readme_walkthrough_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "infraai"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The virtualenv exists already: its stamp is newer than the clone's pyproject.toml.
    os.utime(clone / "pyproject.toml", (0, 0))
    port = free_port()
    env = {**os.environ, "INFRAAI_PORT": str(port)}
    terminal = Terminal(["make", "run", f"VENV={sys.prefix}"], clone, env)
    try:
        terminal.expect("InfraAI console", seconds=120)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/alerts",
            data=(clone / "examples" / "alert.json").read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == {"received": 1, "proposals": 1}
        shown = terminal.expect("type approve 1 or deny 1")
        assert "#1 PENDING · KubePodCrashLooping (critical)" in shown
        terminal.type("approve 1")
        terminal.expect("Approved proposal #1")
        terminal.expect("✅ #1 succeeded")
        terminal.type("/infraai status")
        assert "database: ok" in terminal.expect("auto-remediation")
        os.killpg(terminal.process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        # InfraAI ends and says so; make, interrupted too, reports the interrupt as it does.
        terminal.process.wait(timeout=20)
        terminal.expect("InfraAI stopped. Bye.", seconds=5)
    finally:
        terminal.close()
