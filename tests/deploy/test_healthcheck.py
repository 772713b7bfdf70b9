"""`docker-healthcheck` (deploy/docker/healthcheck.py): the role it picks from the command
line, the serve check against a real HTTP server on INFRAAI_PORT, and the worker check
against a real `infraai worker` on real Redis — alive, then killed with `kill -9`."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from redis import Redis

from tests.helpers import eventually
from tests.stack import REDIS_URL, flush_redis

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load_script()


def run_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The script as Docker runs it: its own process, configured by the environment only."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("INFRAAI_", "REDIS_", "DATABASE_"))
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**inherited, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (b"tini\0--\0infraai\0serve\0", "serve"),  # the image's entrypoint + CMD
        (b"tini\0--\0infraai\0worker\0--name\0w1\0", "worker"),
        (b"/opt/infraai/bin/python\0/opt/infraai/bin/infraai\0migrate\0", "migrate"),
        (b"tini\0--\0infraai\0", None),  # no subcommand
        (b"sh\0-c\0sleep infinity\0", None),
        (b"", None),
    ],
)
def test_the_role_is_the_infraai_subcommand_of_pid_1(cmdline: bytes, role: str | None) -> None:
    assert healthcheck.role_from_cmdline(cmdline) == role


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("0.0.0.0", 8080, "http://127.0.0.1:8080/healthz"),  # the image's wildcard bind
        ("127.0.0.1", 9000, "http://127.0.0.1:9000/healthz"),
        ("::", 8081, "http://[::1]:8081/healthz"),
        ("10.1.2.3", 80, "http://10.1.2.3:80/healthz"),
    ],
)
def test_the_serve_check_asks_where_the_bot_listens(host: str, port: int, url: str) -> None:
    assert healthcheck.healthz_url(host, port) == url


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback server whose /healthz answers the status at the end of the list."""
    statuses = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[-1] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()


def test_serve_is_healthy_only_while_healthz_on_infraai_port_answers_200(
    http_server: tuple[int, list[int]],
) -> None:
    port, statuses = http_server
    healthy = run_check({"INFRAAI_PORT": str(port)}, "serve")
    assert (healthy.returncode, healthy.stdout.strip()) == (
        0,
        f"healthy: http://127.0.0.1:{port}/healthz answered 200",
    )

    statuses.append(503)
    failing = run_check({"INFRAAI_PORT": str(port)}, "serve")
    assert failing.returncode == 1
    assert failing.stdout.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz answered 503")

    # Another port than the bot's: bound but not listening, so refused, never answered.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        elsewhere = run_check({"INFRAAI_PORT": str(closed.getsockname()[1])}, "serve")
    assert elsewhere.returncode == 1
    assert "unreachable" in elsewhere.stdout


def test_one_shot_roles_have_nothing_to_check() -> None:
    result = run_check({}, "migrate")
    assert (result.returncode, result.stdout.strip()) == (
        0,
        "healthy: nothing long-running to check for role 'migrate'",
    )


def test_a_worker_without_redis_is_unhealthy() -> None:
    result = run_check({}, "worker")
    assert result.returncode == 1
    assert result.stdout.strip() == "unhealthy: REDIS_URL is unset: no worker can be registered"


@pytest.mark.integration
async def test_a_worker_is_healthy_while_registered_and_unhealthy_once_killed(
    pg_url: str, tmp_path: Path
) -> None:
    await flush_redis()
    env = {"REDIS_URL": REDIS_URL, "DATABASE_URL": pg_url}
    name = f"healthcheck-{os.getpid()}"
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot.cli", "worker", "--name", name),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        healthy = await eventually(
            lambda: asyncio.to_thread(run_check, env, "worker"),
            lambda r: r.returncode == 0,
            within=30,
            what="the worker to register",
            details=lambda: (tmp_path / "worker.log").read_text(errors="replace"),
        )
        assert healthy.stdout.strip() == f"healthy: RQ worker {name} registered and alive"
    finally:
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)

    # The registration outlives a kill -9 until its TTL runs out; the check must not wait.
    assert Redis.from_url(REDIS_URL).exists(f"rq:worker:{name}")
    dead = run_check(env, "worker")
    assert dead.returncode == 1
    assert dead.stdout.strip().startswith("unhealthy: no live RQ worker registered from ")
