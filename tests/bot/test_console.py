"""The console surface: the same notifier port, command parser and approvals as Slack, with
the proposals printed to a stream and `approve N` / `deny N` / commands typed at a prompt."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.console import CONSOLE_USER, ConsoleNotifier, handle_line, read_lines
from core.alerts.webhook import parse_payload
from core.approvals import TrustedAuthorizer
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.helpers import count, crashloop, eventually, install_policies, payload, policy, rows


class Console:
    def __init__(self, runtime: Runtime, out: io.StringIO) -> None:
        self.runtime = runtime
        self.out = out

    async def ingest(self, body: dict[str, Any]) -> Any:
        outcome = await self.runtime.alerts.ingest(parse_payload(body))
        for listener in self.runtime.on_ingested:
            listener(outcome)
        return outcome

    async def printed(self, text: str, *, times: int = 1) -> str:
        async def probe() -> str:
            return self.out.getvalue()

        return await eventually(
            probe, lambda out: out.count(text) >= times, within=10, what=f"{text!r} printed"
        )

    async def line(self, line: str) -> str:
        return await handle_line(self.runtime, line)


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[str]:
    """A fake cluster holding prod/api-1 … api-4; yields a kubeconfig path."""
    api = FakeKubeAPI()
    api.add_namespace("prod")
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "api-7d9f",
        "uid": "0b7c8d4e-0000-4000-8000-000000000001",
        "controller": True,
    }
    for i in range(1, 5):
        api.add_pod("prod", f"api-{i}", owner=owner)
    url = await api.start()
    yield str(write_kubeconfig(tmp_path / "kubeconfig", url))
    await api.stop()


@pytest.fixture
async def console(sqlite_db: str, kube: str) -> AsyncIterator[Console]:
    settings = make_settings(sqlite_db, infraai_dry_run=True, kubeconfig=kube)
    runtime = Runtime.build(settings, authorizer=TrustedAuthorizer())
    out = io.StringIO()
    runtime.attach_notifier(ConsoleNotifier(out))
    await install_policies(runtime, policy())
    runtime.start_background(maintenance_seconds=0.2)
    yield Console(runtime, out)
    await runtime.close()


async def test_alert_to_approve_to_result(console: Console) -> None:
    await console.ingest(payload(crashloop()))
    out = await console.printed("type approve 1 or deny 1")
    assert "#1 PENDING · KubePodCrashLooping (critical)" in out
    assert 'k8s.restart_pod {"namespace": "prod", "pod": "api-1"} → prod/api-1' in out
    assert "dry run: nothing will be changed" in out

    answer = await console.line("approve 1")
    assert answer.startswith("Approved proposal #1")
    out = await console.printed("↳ #1 ")
    assert "would send" in out.split("↳ #1 ", 1)[1]
    out = await console.printed("✅ #1 succeeded")
    # The outbox renders each message from the proposal's state when it sends: a job that
    # ends before the "approved" line goes out is shown once, as succeeded.
    if "👍 #1 approved" in out:
        assert f"👍 #1 approved by {CONSOLE_USER}" in out
    [proposal] = await rows(console.runtime, "SELECT status, decided_by FROM proposals")
    assert proposal == {"status": "succeeded", "decided_by": CONSOLE_USER}


async def test_deny_and_a_second_decision(console: Console) -> None:
    await console.ingest(payload(crashloop()))
    await console.printed("approve 1")
    assert await console.line("deny #1") == "Denied proposal #1."
    await console.printed(f"🚫 #1 denied by {CONSOLE_USER}")
    late = await console.line("approve 1")
    assert "already denied by" in late
    assert await count(console.runtime, "job_logs") == 0
    assert await count(console.runtime, "audit_events", "verb = 'proposal.denied'") == 1
    assert await count(console.runtime, "audit_events", "verb = 'approval.too_late'") == 1


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("approve", "usage: approve <proposal id>"),
        ("deny x", "usage: deny <proposal id>"),
        ("approve 1 2", "usage: approve <proposal id>"),
        ("approve 99", "There is no proposal #99."),
        ("", ""),
        ("   ", ""),
    ],
)
async def test_decision_usage(console: Console, line: str, answer: str) -> None:
    assert await console.line(line) == answer


async def test_commands_in_the_console(console: Console) -> None:
    help_text = await console.line("help")
    assert "proposals [status]" in help_text and "Health of each integration." in help_text
    assert "restart-crashlooping-pod" in await console.line("policy list")
    assert await console.line("proposals") == "(none)"
    await console.ingest(payload(crashloop()))
    listed = await console.line("proposals pending")
    assert "pending" in listed and "prod/api-1" in listed
    status = await console.line("status")
    assert "✅ database: ok" in status and "▶️ auto-remediation on" in status
    assert "✅ kubernetes: ok" in status and "⚪ vsphere: not configured" in status
    assert "paused" in await console.line("pause")
    assert "⏸️ auto-remediation paused" in await console.line("status")
    assert "resumed" in await console.line("resume")
    # Not a command: a question for the assistant (here without Ollama: one sentence).
    asked = await console.line("frobnicate now")
    assert "is unreachable" in asked and "usage" not in asked
    assert "outside the ranges" in await console.line("scan 10.0.0.1")
    assert await count(console.runtime, "audit_events", "verb IN ('pause', 'resume')") == 2


async def test_a_storm_is_grouped_in_the_console(console: Console) -> None:
    await console.ingest(payload(*(crashloop(pod=f"api-{i}") for i in range(1, 5))))
    out = await console.printed("⚡ 4 proposals from policy restart-crashlooping-pod")
    assert all(f"#{i} PENDING" in out for i in range(1, 5))
    assert (await console.line("approve 3")).startswith("Approved proposal #3")
    await console.printed("✅ #3 succeeded")


async def test_read_lines_runs_until_eof_and_survives_a_bad_line(
    console: Console, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import commands

    async def broken(inv: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(commands.COMMANDS, "jobs", broken)
    stdin = io.StringIO("jobs\nproposals\nquit\nhelp\n")
    await read_lines(console.runtime, stdin)
    printed = capsys.readouterr().out
    assert "error: RuntimeError: boom" in printed
    assert "\n(none)\n" in printed  # `proposals` after the failed line
    assert "What InfraAI can do" not in printed  # `quit` stopped the prompt
    await read_lines(console.runtime, io.StringIO(""))  # EOF at once: returns


@pytest.mark.parametrize("line", ["/infraai help", "help", "/infraai", "/INFRAAI help"])
async def test_the_slash_prefix_and_the_bare_words_both_work(console, line) -> None:
    answer = await console.line(line)
    assert "Unknown command" not in answer
    assert "proposals" in answer and "approve" not in answer.split("\n", 1)[0].lower()


async def test_the_status_command_with_its_prefix(console) -> None:
    assert "database" in await console.line("/infraai status")


async def test_free_text_is_a_question_for_the_assistant(console) -> None:
    from tests.peers.prometheus_stack import free_port

    away = f"http://127.0.0.1:{free_port()}"
    console.runtime.settings = console.runtime.settings.model_copy(update={"ollama_base_url": away})
    answer = await console.line("why is api-1 crashlooping?")
    assert answer.startswith(f"Ollama at {away} is unreachable")


def _serve_in_a_terminal(tmp_path: Path) -> tuple[Any, int]:
    import os
    import pty
    import subprocess
    import sys

    from core.db.schema import upgrade
    from tests.peers.prometheus_stack import free_port

    url = f"sqlite+aiosqlite:///{tmp_path}/infraai.db"
    upgrade(url)
    primary, secondary = pty.openpty()
    env = {**os.environ, "DATABASE_URL": url, "INFRAAI_PORT": str(free_port())}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        start_new_session=True,
    )
    os.close(secondary)
    return process, primary


def _read_until(primary: int, text: str, seconds: float = 30) -> str:
    import os
    import select
    import time

    seen, deadline = b"", time.monotonic() + seconds
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                seen += os.read(primary, 4096)
            except OSError:
                break
    return seen.decode(errors="replace")


@pytest.mark.parametrize("how", ["ctrl-c", "ctrl-d", "exit"])
def test_the_console_ends_the_whole_process(tmp_path, how) -> None:
    import os
    import signal

    process, primary = _serve_in_a_terminal(tmp_path)
    try:
        assert "InfraAI console" in _read_until(primary, "InfraAI console")
        if how == "ctrl-c":
            os.kill(process.pid, signal.SIGINT)
        elif how == "ctrl-d":
            os.write(primary, b"\x04")
        else:
            os.write(primary, b"exit\r")
        # A hang guard, not a measurement: before, the process waited for the next Enter.
        assert process.wait(timeout=20) == 0
        assert "Bye." in _read_until(primary, "Bye.", seconds=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)


async def test_tables_fit_80_columns_without_cutting_words(console) -> None:
    from bot.render_text import render_reply
    from core.commands import Jobs
    from core.jobs import JobRow

    long_error = (
        "the deployment prod/api-server-with-a-long-name could not be scaled because "
        "its replica set refused the request: admission webhook denied it"
    )
    row = JobRow(
        1,
        12,
        "k8s.scale",
        "prod/api-server-with-a-long-name",
        1,
        "failed",
        None,
        None,
        None,
        None,
        None,
        long_error,
        None,
    )
    text = render_reply(Jobs([row]))
    assert all(len(line) <= 80 for line in text.splitlines()), text
    words = " ".join(line.strip() for line in text.splitlines()[1:])
    for word in long_error.split():
        assert word in words.split(), word  # every word whole, none cut


async def test_expiry_and_decisions_show_the_date(console) -> None:
    await console.ingest(payload(crashloop()))
    out = await console.printed("type approve 1")
    import re

    assert re.search(r"expires \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", out), out


async def test_help_lists_every_command_and_none_as_unavailable(console) -> None:
    from core.commands import COMMANDS

    help_text = await console.line("help")
    for name in COMMANDS:
        line = next(line for line in help_text.splitlines() if line.startswith(name))
        assert "not available" not in line, line


@pytest.mark.integration
async def test_a_scan_prints_progress_then_the_summary(console, capsys) -> None:
    import socket

    from tests.discovery.helpers import label

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        summary = await console.line(f"scan 127.0.0.1 {port}")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"🔎 scanning 127.0.0.1, ports {port}…"
    assert printed[1:] == ["  1/1 scanned:", f"    127.0.0.1 (localhost): {label(port)}"]
    assert summary.startswith("Scan #1 of 127.0.0.1 ports") and "1 of 1 hosts up" in summary
    listed = await console.line("assets")
    assert listed.splitlines()[0] == "127.0.0.0/24"
    assert "127.0.0.1" in listed and label(port) in listed and "localhost" in listed
    assert all(len(line) <= 80 for line in listed.splitlines())
    assert "No assets match" in await console.line("assets 10.0.0.0/8")
