"""The worker: approved proposals executed per second through InfraAI's job function, against
bare RQ no-op jobs on the same worker class, and approve → running latency.

Three runs, on a throwaway PostgreSQL database and Redis DB 14 (flushed before and after;
`--redis-url` picks another database when tests are using that one):

* **bare RQ** — N jobs of a module-level no-op function, run by one burst `SimpleWorker`
  (the class `infraai worker` uses): RQ's own cost per job, the ceiling here;
* **InfraAI** — N proposals approved through `Approvals.decide` (enqueued by the real
  `RQExecutor`), run by one `infraai worker --burst` whose only change is a `bench.noop`
  action registered in the catalogue and the action runner: the whole job function (claim
  approved → running, job log, heartbeat task, audit events, outbox rows, the result) around
  an adapter call that does nothing;
* **latency** — with that worker idle and waiting, M proposals approved one at a time: from
  the moment `decide()` is called to the job log's `started_at` (the row written in the same
  transaction as approved → running).

Throughput is measured from RQ's own per-job timestamps, the same way for both runs: the jobs
finished after the first W (warm-up: imports, connections) divided by the time between the
W-th and the last end. The ratio is InfraAI's jobs/s over bare RQ's.

    .venv/bin/python -m bench.worker                  # N=1000, M=200
    .venv/bin/python -m bench.worker --jobs 3000 --latency-samples 500
    .venv/bin/python -m bench.worker --redis-url redis://127.0.0.1:6379/12
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.throwaway import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
REDIS_URL = DEFAULT_REDIS_URL  # set from --redis-url (the bench) or $REDIS_URL (its workers)
NOOP_ACTION = "bench.noop"
WARMUP = 10
TARGET_RATIO = 0.5
TARGET_P50_MS = 50.0


def noop() -> str:
    """The bare RQ job."""
    return "ok"


# ---------------------------------------------------------------- the worker processes


def register_noop_action() -> None:
    """Add `bench.noop` to the catalogue and the action runner of this process only."""
    from adapters.kubernetes import ActionOutcome
    from core.actions import catalogue
    from core.execution import actions

    spec = catalogue.ActionSpec(
        name=NOOP_ACTION,
        description="does nothing (benchmark)",
        params=catalogue.NoParams,
        risk="write",
        target=lambda params: "nothing",
    )
    catalogue.CATALOGUE[NOOP_ACTION] = spec
    catalogue.BY_TOOL_NAME[spec.tool_name] = spec
    actions._HANDLERS[NOOP_ACTION] = lambda integrations, action, params, dry_run: ActionOutcome(
        "did nothing", None
    )


def worker_main(kind: str, burst: bool) -> int:
    """`python -m bench.worker --worker bare|infraai [--burst]` (environment: DATABASE_URL)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from core.config import load_settings
    from core.execution.executor import QUEUE_NAME

    if kind == "infraai":
        from core.execution.worker import run_worker

        register_noop_action()
        return run_worker(load_settings(), burst=burst, name=f"bench-{os.getpid()}")
    connection = Redis.from_url(REDIS_URL)
    worker = SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    worker.work(burst=burst, logging_level="WARNING")
    return 0


def start_worker(database_url: str, kind: str, *, burst: bool) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "INFRAAI_", "VSPHERE_", "KUBE", "DATABASE_", "REDIS_"))
    }
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "bench.worker", "--worker", kind]
    if burst:
        args.append("--burst")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- database and queue


def flush_redis() -> None:
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()


def job_ends(job_ids: list[str]) -> list[datetime]:
    from redis import Redis
    from rq.job import Job

    jobs = Job.fetch_many(job_ids, connection=Redis.from_url(REDIS_URL))
    missing = [job_id for job_id, job in zip(job_ids, jobs, strict=True) if job is None]
    if missing:
        raise RuntimeError(f"{len(missing)} jobs vanished from Redis, e.g. {missing[0]}")
    ends = [job.ended_at for job in jobs if job is not None and job.ended_at]
    if len(ends) != len(job_ids):
        raise RuntimeError(f"only {len(ends)} of {len(job_ids)} jobs ended")
    return sorted(ends)


@dataclass
class Run:
    name: str
    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")


def measured(name: str, ends: list[datetime]) -> Run:
    """The jobs that ended after the first WARMUP, over the time they took."""
    return Run(name, len(ends) - WARMUP, (ends[-1] - ends[WARMUP - 1]).total_seconds())


def wait_for(process: subprocess.Popen[bytes], what: str, timeout: float = 600) -> None:
    code = process.wait(timeout)
    if code != 0:
        raise RuntimeError(f"{what} exited {code}")


# ---------------------------------------------------------------- the three runs


def bare_run(database_url: str, jobs: int) -> Run:
    from redis import Redis
    from rq import Queue

    from core.execution.executor import QUEUE_NAME

    flush_redis()
    queue = Queue(QUEUE_NAME, connection=Redis.from_url(REDIS_URL))
    ids = [f"bare-{i}" for i in range(jobs)]
    # By name: run as `python -m bench.worker`, this module is __main__ here.
    queue.enqueue_many([Queue.prepare_data("bench.worker.noop", job_id=job_id) for job_id in ids])
    wait_for(start_worker(database_url, "bare", burst=True), "the bare RQ worker")
    ends = job_ends(ids)
    return measured("bare RQ no-op (SimpleWorker)", ends)


async def make_proposals(sessions: Any, count: int) -> list[int]:
    from core.db.models import Proposal
    from core.db.types import utcnow

    now = utcnow()
    rows = [
        Proposal(
            source="command",
            action=NOOP_ACTION,
            params={},
            target="nothing",
            status="pending",
            requested_by="bench",
            expires_at=None,
            dedup_key=f"bench-{secrets.token_hex(8)}",
            slack_channel="C0BENCH",
            created_at=now,
            updated_at=now,
        )
        for _ in range(count)
    ]
    async with sessions() as session, session.begin():
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def infraai_run(database_url: str, jobs: int) -> Run:
    import sqlalchemy as sa

    from core.approvals import Approvals, TrustedAuthorizer
    from core.db.engine import create_engine, session_factory
    from core.db.models import Proposal
    from core.execution.executor import RQExecutor, job_id_for

    flush_redis()
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    executor = RQExecutor(REDIS_URL, job_timeout=600)
    try:
        approvals = Approvals(sessions, executor, TrustedAuthorizer(), ())
        ids = await make_proposals(sessions, jobs)
        for pid in ids:
            outcome = await approvals.decide(pid, "bench", True)
            if outcome.execution != "queued":
                raise RuntimeError(f"proposal {pid}: {outcome.message}")
        worker = start_worker(database_url, "infraai", burst=True)
        await asyncio.to_thread(wait_for, worker, "the InfraAI worker")
        async with sessions() as session:
            done = await session.scalar(
                sa.select(sa.func.count())
                .select_from(Proposal)
                .where(Proposal.id.in_(ids), Proposal.status == "succeeded")
            )
        if done != jobs:
            raise RuntimeError(f"only {done} of {jobs} proposals succeeded")
        ends = job_ends([job_id_for(pid) for pid in ids])
        return measured("InfraAI job function, no-op action", ends)
    finally:
        await executor.close()
        await engine.dispose()


async def latency_run(database_url: str, samples: int) -> list[float]:
    """approve → running, in ms, with one idle worker waiting on the queue."""
    import sqlalchemy as sa
    from redis import Redis
    from rq import Worker

    from core.approvals import Approvals, TrustedAuthorizer
    from core.db.engine import create_engine, session_factory
    from core.db.models import JobLog, Proposal
    from core.db.types import utcnow
    from core.execution.executor import RQExecutor

    flush_redis()
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    executor = RQExecutor(REDIS_URL, job_timeout=600)
    worker = start_worker(database_url, "infraai", burst=False)
    latencies: list[float] = []
    try:
        redis = Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + 60
        while Worker.count(connection=redis) < 1:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the InfraAI worker did not start")
            await asyncio.sleep(0.05)
        approvals = Approvals(sessions, executor, TrustedAuthorizer(), ())
        ids = await make_proposals(sessions, samples + WARMUP)
        for n, pid in enumerate(ids):
            clicked = utcnow()
            await approvals.decide(pid, "bench", True)
            started = None
            give_up = time.monotonic() + 30
            while True:
                async with sessions() as session:
                    status = await session.scalar(
                        sa.select(Proposal.status).where(Proposal.id == pid)
                    )
                    if status == "succeeded":
                        started = await session.scalar(
                            sa.select(JobLog.started_at).where(JobLog.proposal_id == pid)
                        )
                        break
                if time.monotonic() > give_up:
                    raise RuntimeError(f"proposal {pid} did not run (status {status})")
                await asyncio.sleep(0.002)
            if n >= WARMUP and started is not None:
                latencies.append((started - clicked).total_seconds() * 1000)
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: it is idle, so it exits at once
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        await executor.close()
        await engine.dispose()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> int:
    from core.db.schema import upgrade

    url = await create_database(args.pg_host, args.pg_port)
    try:
        await asyncio.to_thread(upgrade, url)
        bare = await asyncio.to_thread(bare_run, url, args.jobs)
        ours = await infraai_run(url, args.jobs)
        latencies = await latency_run(url, args.latency_samples)
    finally:
        flush_redis()
        await drop_database(url)
    ratio = ours.rate / bare.rate
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    rows = [
        ["run", "jobs", "seconds", "jobs/s", "ratio", "approve→running p50 ms", "p99 ms"],
        [bare.name, str(bare.jobs), f"{bare.seconds:.2f}", f"{bare.rate:.0f}", "1.00", "", ""],
        [
            ours.name,
            str(ours.jobs),
            f"{ours.seconds:.2f}",
            f"{ours.rate:.0f}",
            f"{ratio:.2f}",
            f"{p50:.1f}",
            f"{p99:.1f}",
        ],
    ]
    print(
        f"One SimpleWorker process each; PostgreSQL at {args.pg_host}:{args.pg_port}, "
        f"Redis {REDIS_URL}; {WARMUP} warm-up jobs not counted; latency over "
        f"{len(latencies)} approvals one at a time, worker idle."
    )
    print(table(rows))
    ratio_ok = "met" if ratio >= TARGET_RATIO else "MISSED"
    p50_ok = "met" if p50 <= TARGET_P50_MS else "MISSED"
    print(
        f"targets: ratio ≥ {TARGET_RATIO} ({ratio_ok}); "
        f"approve → running p50 ≤ {TARGET_P50_MS:.0f} ms ({p50_ok})"
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput run")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--pg-host", default=os.environ.get("INFRAAI_TEST_PG_HOST", "127.0.0.1"))
    parser.add_argument(
        "--pg-port", type=int, default=int(os.environ.get("INFRAAI_TEST_PG_PORT", "5432"))
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help="a Redis database the bench may flush (default: DB 14)",
    )
    parser.add_argument("--worker", choices=["bare", "infraai"], help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 10 * WARMUP:
        parser.error(f"--jobs must be at least {10 * WARMUP}")
    return args


def main(argv: list[str] | None = None) -> int:
    global REDIS_URL
    args = parse_args(argv)
    if args.worker:
        REDIS_URL = os.environ["REDIS_URL"]
        return worker_main(args.worker, args.burst)
    REDIS_URL = args.redis_url
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
