#!/opt/infraai/bin/python
"""`docker-healthcheck`: the container's health, judged by the role the container runs.

One image runs three roles, so one fixed HEALTHCHECK command cannot be right for all:

- `serve`: `GET /healthz` on the port the bot listens on (INFRAAI_PORT, read through the
  same settings class as the bot, so the check follows the configuration, not 8080).
- `worker`: the RQ worker has no HTTP port. Its liveness is RQ's own: a worker registers as
  `rq:worker:<name>` in Redis with a TTL that every heartbeat extends (idle: worker_ttl +
  60 s; during a job: the job timeout + 60 s). Healthy = a registration whose key is still
  alive, from this container's hostname, naming a process that still exists here (a
  `kill -9` leaves the key behind until its TTL runs out; the pid check notices at once).
- anything else (`migrate`, a one-off CLI command): nothing long-running to check.

The role is the first argument when given (Kubernetes exec probes pass it), else read from
PID 1's command line (`tini -- infraai ROLE …`, the image's entrypoint). Exit status is
Docker's convention: 0 healthy, 1 unhealthy; one line on stdout says why.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

HTTP_TIMEOUT = 3.0
REDIS_TIMEOUT = 3.0


def role_from_cmdline(cmdline: bytes) -> str | None:
    """The `infraai` subcommand in a NUL-separated command line, e.g. `tini -- infraai worker`."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    for index, arg in enumerate(args[:-1]):
        if os.path.basename(arg) == "infraai":
            return args[index + 1]
    return None


def running_role() -> str | None:
    try:
        return role_from_cmdline(Path("/proc/1/cmdline").read_bytes())
    except OSError:
        return None


def healthz_url(host: str, port: int) -> str:
    """Where this container's bot answers: a wildcard bind is reached on loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check_serve() -> tuple[bool, str]:
    from core.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        return False, f"bad setting: {exc}"
    url = healthz_url(settings.infraai_host, settings.infraai_port)
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            return response.status == 200, f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"{url} unreachable: {exc}"


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check_worker() -> tuple[bool, str]:
    from core.config import ConfigError, load_settings

    try:
        redis_url = load_settings().redis_url
    except ConfigError as exc:
        return False, f"bad setting: {exc}"
    if not redis_url:
        return False, "REDIS_URL is unset: no worker can be registered"
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Worker

    hostname = socket.gethostname()
    connection = Redis.from_url(
        redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        # Worker.all drops registrations whose key has expired (no heartbeat in time).
        workers = Worker.all(connection=connection)
        alive = [
            w.name
            for w in workers
            if w.hostname == hostname
            and w.pid is not None
            and process_exists(w.pid)
            and w.death_date is None
        ]
    except RedisError as exc:
        return False, f"Redis unreachable: {exc}"
    finally:
        connection.close()
    if alive:
        return True, f"RQ worker {', '.join(alive)} registered and alive"
    return False, f"no live RQ worker registered from {hostname}"


CHECKS = {"serve": check_serve, "worker": check_worker}


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else running_role()
    check = CHECKS.get(role or "")
    if check is None:
        print(f"healthy: nothing long-running to check for role {role or 'unknown'!r}")
        return 0
    ok, detail = check()
    print(("healthy: " if ok else "unhealthy: ") + detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
