"""`infraai worker` and `infraai jobs`."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.cli_support import CliError, session_for, table

if TYPE_CHECKING:
    from core.config import Settings
    from core.jobs import JobRow


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run an RQ worker on the `infraai` queue: executes approved proposals (needs REDIS_URL).

    Run as many as you need against one Redis; each proposal runs once whatever the number.
    """
    if not settings.redis_url:
        raise CliError(
            "REDIS_URL is unset: without Redis, approved actions run inside `infraai serve`"
        )
    from core.execution.worker import run_worker

    return run_worker(settings, burst=args.burst, name=args.name)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """List recent job runs (one line per attempt), newest first."""
    from core.jobs import list_jobs

    async def run() -> list[JobRow]:
        async with session_for(settings) as session:
            return await list_jobs(session, limit=args.limit)

    jobs = asyncio.run(run())
    if args.json:
        print(json.dumps([j.as_dict() for j in jobs], indent=2))
        return 0
    rows = [
        [
            j.proposal_id,
            j.attempt,
            j.status,
            j.action,
            j.target,
            f"{j.duration:.2f}s" if j.duration is not None else "",
            j.worker_name or "",
            (j.error or j.output or "").splitlines()[0][:80] if (j.error or j.output) else "",
        ]
        for j in jobs
    ]
    print(
        table(["PROPOSAL", "TRY", "STATUS", "ACTION", "TARGET", "TOOK", "WORKER", "RESULT"], rows)
    )
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add: Callable[[str, Callable[[argparse.Namespace, Settings], int]], argparse.ArgumentParser],
) -> None:
    worker = add("worker", cmd_worker)
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--name", help="worker name (default: host.pid)")
    jobs = add("jobs", cmd_jobs)
    jobs.add_argument("-n", "--limit", type=int, default=20)
    jobs.add_argument("--json", action="store_true")
