"""Alert ingestion under load: InfraAI's POST /alerts on PostgreSQL against a bare ceiling.

`wrk` (the load generator, in C; `bench/ingest.lua` builds each request) keeps N connections
busy with 10-alert Alertmanager payloads for a fixed time against

* the real InfraAI server (`infraai serve`'s code, in its own process) on PostgreSQL, and
* a bare aiohttp endpoint that only parses the JSON and answers (the ceiling on this machine),

each server in its own process. The generator must be much faster than what it measures, or
the ratio measures the client: the CPU each side spent per request is printed under each row
(the Python senders of earlier versions, `--generator python`, were slower than the bare
endpoint and flattered the ratio). For
each concurrency level the table shows req/s, alerts/s, p50/p99 latency and InfraAI's req/s
as a share of the ceiling's at the same N. Under each row: CPU milliseconds per request of
the load generator, the server and the PostgreSQL backends of the bench's database (on a
shared machine the ratio is what a CPU budget allows); for InfraAI, how many deliveries each
commit carried and the garbage collector's pauses. After each InfraAI run the database is
checked against what the senders saw: every alert answered 200 is counted exactly once
(sum of times_received), and every crash-looping pod got exactly one proposal.

The database starts as one that has been running (a month of resolved alerts and closed
proposals, analysed) with 101 policies; the payload mix is printed with the results.

    .venv/bin/python -m bench.ingest                      # throwaway DB on 127.0.0.1:5432
    .venv/bin/python -m bench.ingest --senders 1,8,32 --duration 8
    .venv/bin/python -m bench.ingest --senders 32 --rate 200   # open loop: latency at 200/s
    .venv/bin/python -m bench.ingest --database-url postgresql://postgres@db/infraai_bench

With --database-url the database must exist and be empty of alerts (it is migrated, seeded
and given the bench's policies, but not dropped). wrk reports the requests it completed; ones
still in flight when it stops may commit too, so "nothing lost" is checked as: every alert
answered 2xx is recorded, and at most N in-flight deliveries more, and every crash-looping pod
still firing has its proposal (a pod whose firing and resolution were committed together has
none, rightly: it resolved before InfraAI could propose); "nothing doubled" as never two
proposals for one alert nor two open ones for a key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

TOKEN = "bench-" + secrets.token_hex(8)
ALERTS_PER_PAYLOAD = 10
# The payload mix, per alert slot (see Sender.next_payload).
NEW_SHARE = 0.15  # a new fingerprint
NEW_CRASHLOOP_SHARE = 0.7  # … of which a crash-looping pod (→ a new proposal)
RESOLVE_SHARE = 0.05  # a known firing alert resolves (→ its pending proposal superseded)
OTHER_ALERTNAMES = (
    "HostHighCpuLoad",
    "HostOutOfMemory",
    "NodeFilesystemAlmostFull",
    "KubeDeploymentReplicasMismatch",
    "KubeJobFailed",
    "TargetDown",
    "PostgresqlTooManyConnections",
    "BlackboxProbeFailed",
)
MIX = (
    f"{ALERTS_PER_PAYLOAD} alerts per payload; per alert "
    f"{100 * (1 - NEW_SHARE - RESOLVE_SHARE):.0f}% re-delivery of a firing alert already "
    f"seen, {100 * NEW_SHARE:.0f}% new fingerprint ({100 * NEW_CRASHLOOP_SHARE:.0f}% of them "
    f"a crash-looping pod → a new proposal, the rest alerts no policy matches), "
    f"{100 * RESOLVE_SHARE:.0f}% a known alert resolving (→ its pending proposal superseded); "
    "101 policies (restart-crashlooping-pod + 100 that do not match)"
)


# ---------------------------------------------------------------- policies and database


def bench_policies() -> list[dict[str, Any]]:
    """restart-crashlooping-pod plus 100 policies that the bench's alerts reach but fail.

    20 sit in front of the restart policy on the same alertname (other namespaces), so a
    crash-looping pod walks through them first; 80 are on other alertnames for staging,
    while every alert the bench sends says env="prod".
    """
    from tests.helpers import RESTART_POLICY

    policies: list[dict[str, Any]] = [dict(RESTART_POLICY)]
    for i in range(20):
        policies.append(
            {
                "name": f"restart-team-{i:02d}",
                "priority": 5,
                "matchers": [
                    'alertname="KubePodCrashLooping"',
                    f'namespace=~"team-{i:02d}-.*"',
                ],
                "action": "k8s.restart_pod",
                "params": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
            }
        )
    for i in range(80):
        policies.append(
            {
                "name": f"staging-{OTHER_ALERTNAMES[i % len(OTHER_ALERTNAMES)].lower()}-{i:02d}",
                "priority": 20 + i,
                "matchers": [
                    f'alertname="{OTHER_ALERTNAMES[i % len(OTHER_ALERTNAMES)]}"',
                    'env="staging"',
                    f'team="team-{i:02d}"',
                ],
                "action": "k8s.rollout_restart",
                "params": {"namespace": "{{ labels.namespace }}", "deployment": "api"},
            }
        )
    return policies


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(str(make_url(url).set(database="postgres"))))


async def create_database(host: str, port: int) -> str:
    name = f"infraai_bench_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@{host}:{port}/{name}"
    admin = await _admin(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url


async def drop_database(url: str) -> None:
    admin = await _admin(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


async def install_policies(url: str) -> None:
    from core.db.engine import create_engine, session_factory
    from core.policy.spec import parse_policy
    from core.policy.store import apply_policies

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await apply_policies(session, [parse_policy(p) for p in bench_policies()], "bench")
    finally:
        await engine.dispose()


SEED_ALERTS = 20_000
SEED_PROPOSALS = SEED_ALERTS // 4
SEED_SQL = (
    f"""
    INSERT INTO alerts (fingerprint, alertname, status, labels, annotations, starts_at,
                        ends_at, generator_url, first_seen, last_seen, times_received)
    SELECT 'seed-' || g, 'SeedAlert' || (g % 40), 'resolved',
           jsonb_build_object('alertname', 'SeedAlert' || (g % 40), 'instance',
                              'host-' || g || ':9100', 'env', 'prod', 'severity', 'warning'),
           '{{"summary": "an alert from last month"}}',
           now() - g * interval '2 minutes', now() - g * interval '2 minutes' + interval '9 min',
           'http://prometheus:9090/graph', now() - g * interval '2 minutes',
           now() - g * interval '2 minutes' + interval '9 min', 1 + g % 7
    FROM generate_series(1, {SEED_ALERTS}) AS g
    """,
    """
    INSERT INTO proposals (source, alert_id, alert_starts_at, policy_id, policy_name, action,
                           params, target, risk, approval, approvers, dry_run, status,
                           requested_by, decided_by, decided_at, dedup_key, slack_channel,
                           created_at, updated_at)
    SELECT 'alert', a.id, a.starts_at, p.id, p.name, 'k8s.restart_pod',
           jsonb_build_object('namespace', 'prod', 'pod', 'old-' || a.id),
           'prod/old-' || a.id, 'write', 'required', '[]', false,
           (ARRAY['succeeded', 'succeeded', 'succeeded', 'superseded', 'expired', 'denied',
                  'failed'])[1 + a.id % 7],
           'alertmanager', 'U0SEED', a.first_seen + interval '3 min',
           md5('seed' || a.id) || md5('old' || a.id), 'C0OPS', a.first_seen, a.last_seen
    FROM alerts a JOIN policies p ON p.name = 'restart-crashlooping-pod'
    WHERE a.fingerprint LIKE 'seed-%' AND a.id % 4 = 0
    """,
)


async def seed_history(url: str) -> None:
    """A database that has been running: a month of resolved alerts and closed proposals,
    analysed, so the planner sees a realistic table and not a fresh empty one."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for sql in SEED_SQL:
            await connection.execute(sql)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


@dataclass
class DbState:
    received: int
    crashloop_alerts: int
    proposals: int
    open_dups: int
    firing_unproposed: int = 0  # firing crash-looping pods without a proposal: lost
    doubled: int = 0  # alerts with more than one proposal: doubled
    # Pods whose firing and resolution were committed together (one batch keeps the latest
    # state): resolved before InfraAI could propose, so rightly without a proposal.
    resolved_together: int = 0


async def db_state(url: str) -> DbState:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        received = await connection.fetchval("SELECT coalesce(sum(times_received), 0) FROM alerts")
        crashloop = await connection.fetchval(
            "SELECT count(*) FROM alerts WHERE alertname = 'KubePodCrashLooping'"
        )
        proposals = await connection.fetchval("SELECT count(*) FROM proposals")
        dups = await connection.fetchval(
            "SELECT count(*) FROM (SELECT dedup_key FROM proposals WHERE status IN "
            "('pending', 'approved', 'running') GROUP BY dedup_key HAVING count(*) > 1) d"
        )
        unproposed = await connection.fetch(
            "SELECT a.status, count(*) AS n FROM alerts a "
            "WHERE a.alertname = 'KubePodCrashLooping' AND NOT EXISTS "
            "(SELECT 1 FROM proposals p WHERE p.alert_id = a.id) GROUP BY a.status"
        )
        doubled = await connection.fetchval(
            "SELECT count(*) FROM (SELECT alert_id FROM proposals GROUP BY alert_id "
            "HAVING count(*) > 1) d"
        )
    finally:
        await connection.close()
    by_status = {row["status"]: int(row["n"]) for row in unproposed}
    return DbState(
        int(received),
        int(crashloop),
        int(proposals),
        int(dups),
        firing_unproposed=by_status.get("firing", 0),
        doubled=int(doubled),
        resolved_together=by_status.get("resolved", 0),
    )


# ---------------------------------------------------------------- the two servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_infraai(url: str, port: int, token: str, profile: str | None) -> None:
    """The InfraAI HTTP app as `infraai serve` mounts it (child process; SIGTERM stops it).

    Without Slack, the outbox drain and the maintenance sweep: those post to Slack (grouped
    and rate-limited by design), which is not what this measures. A /bench/stats route
    reports what group commit did and how long the garbage collector held the loop.
    Experiments (environment): BENCH_WRITERS=n group-commit writers; BENCH_GC_FREEZE=0
    skips the `gc.freeze()` that `infraai serve` does once started;
    BENCH_GC_THRESHOLD=a,b,c sets `gc.set_threshold(a, b, c)`.
    """
    import gc
    import signal

    from aiohttp import web

    from bot.http.app import create_app
    from bot.serve import settle_heap
    from core.config import Settings
    from core.runtime import Runtime

    settings = Settings(
        database_url=url,
        redis_url=None,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
        infraai_channel="C0OPS",
        infraai_host="127.0.0.1",
        infraai_port=port,
        alerts_token=token,
        infraai_policies=None,
    )
    stats: dict[str, float] = {"batches": 0, "deliveries": 0, "gc_ms": 0.0, "gc_max_ms": 0.0}
    gc_started = [0.0]

    def gc_timer(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        pause = (time.perf_counter() - gc_started[0]) * 1000
        stats["gc_ms"] += pause
        stats["gc_max_ms"] = max(stats["gc_max_ms"], pause)

    async def get_stats(_request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def serve() -> None:
        runtime = Runtime.build(settings)
        committer = runtime.alerts._committer
        commit_batch = committer._commit_batch

        async def counted(items: Any) -> Any:
            stats["batches"] += 1
            stats["deliveries"] += len(items)
            return await commit_batch(items)

        committer._commit_batch = counted
        if os.environ.get("BENCH_WRITERS"):
            committer._writers = int(os.environ["BENCH_WRITERS"])
        try:
            await runtime.check_schema()
            app = create_app(runtime)
            app.router.add_get("/bench/stats", get_stats)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            if os.environ.get("BENCH_GC_FREEZE", "1") == "1":  # as `infraai serve` does
                settle_heap()
            if os.environ.get("BENCH_GC_THRESHOLD"):
                gc.set_threshold(*(int(n) for n in os.environ["BENCH_GC_THRESHOLD"].split(",")))
            gc.callbacks.append(gc_timer)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            await runner.cleanup()
        finally:
            await runtime.close()

    if profile is None:
        asyncio.run(serve())
        return
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(asyncio.run, serve())
    finally:
        profiler.dump_stats(profile)


def run_bare(port: int) -> None:
    """The ceiling: an aiohttp endpoint that parses the JSON body and answers (child process)."""
    from aiohttp import web

    async def post_alerts(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        return web.json_response({"received": len(data["alerts"]), "proposals": 0})

    app = web.Application(client_max_size=2 * 1024 * 1024 + 1)
    app.router.add_post("/alerts", post_alerts)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def wait_ready(base: str, process: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not process.is_alive():
                raise SystemExit(f"the server at {base} exited with {process.exitcode}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(base + "/healthz") as response:
                    if response.status in (200, 404, 405):
                        return
            await asyncio.sleep(0.1)
    raise SystemExit(f"the server at {base} did not answer within 30 s")


# ---------------------------------------------------------------- load


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


class Sender:
    """One Alertmanager-like sender with its own alerts (its own alert groups).

    Fingerprints are unique per sender and a sender has one request in flight, so what the
    database must hold afterwards follows from the 200s this sender got.
    """

    def __init__(self, run: str, index: int, rng: random.Random) -> None:
        self.prefix = f"{run}-s{index}"
        self.rng = rng
        self.firing: list[dict[str, Any]] = []  # delivered (200) and still firing
        self.counter = 0

    def _new_alert(self) -> dict[str, Any]:
        self.counter += 1
        name = f"{self.prefix}-{self.counter}"
        starts = "2026-11-29T08:00:00Z"
        if self.rng.random() < NEW_CRASHLOOP_SHARE:
            labels = {
                "alertname": "KubePodCrashLooping",
                "namespace": "prod",
                "pod": f"api-{name}",
                "container": "api",
                "severity": "critical",
                "env": "prod",
                "job": "kube-state-metrics",
            }
            annotations = {
                "summary": f"Pod prod/api-{name} is crash looping",
                "description": "Pod is restarting 2.1 times / 10 minutes.",
                "runbook_url": "https://runbooks.example.com/KubePodCrashLooping",
            }
        else:
            alertname = self.rng.choice(OTHER_ALERTNAMES)
            labels = {
                "alertname": alertname,
                "namespace": "prod",
                "instance": f"node-{name}:9100",
                "severity": "warning",
                "env": "prod",
                "team": "team-07",
                "job": "node",
            }
            annotations = {
                "summary": f"{alertname} on node-{name}",
                "description": "Value is above the threshold for 5 minutes.",
            }
        return {
            "status": "firing",
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
            "fingerprint": _fingerprint(labels),
        }

    def next_payload(self) -> tuple[bytes, list[dict[str, Any]], list[dict[str, Any]]]:
        """A payload, the new alerts in it, and the alerts it resolves."""
        kinds = []
        for _ in range(ALERTS_PER_PAYLOAD):
            roll = self.rng.random()
            kinds.append(
                "new"
                if roll < NEW_SHARE
                else "resolve"
                if roll < NEW_SHARE + RESOLVE_SHARE
                else "repeat"
            )
        wanted = sum(1 for k in kinds if k != "new")
        known = self.rng.sample(self.firing, min(wanted, len(self.firing)))
        alerts: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        resolving: list[dict[str, Any]] = []
        for kind in kinds:
            if kind == "new" or not known:
                item = self._new_alert()
                new.append(item)
            elif kind == "resolve":
                base = known.pop()
                item = {**base, "status": "resolved", "endsAt": "2026-11-29T09:00:00Z"}
                resolving.append(base)
            else:
                item = known.pop()
            alerts.append(item)
        body = {
            "version": "4",
            "groupKey": f'{{}}:{{sender="{self.prefix}"}}',
            "truncatedAlerts": 0,
            "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": "infraai",
            "groupLabels": {"sender": self.prefix},
            "commonLabels": {"env": "prod"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
        return json.dumps(body).encode(), new, resolving

    def delivered(self, new: list[dict[str, Any]], resolving: list[dict[str, Any]]) -> None:
        self.firing.extend(new)
        if resolving:
            gone = {a["fingerprint"] for a in resolving}
            self.firing = [a for a in self.firing if a["fingerprint"] not in gone]


@dataclass
class RunResult:
    target: str
    senders: int
    seconds: float
    requests: int = 0
    alerts: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_alerts_total: int = 0  # every 200'd alert, warm-up included
    requests_total: int = 0  # every answered request, warm-up included
    # wrk reports percentiles, not samples: (p50 ms, p99 ms, requests) per slice
    slices: list[tuple[float, float, int]] = field(default_factory=list)
    in_flight_slack: int = 0  # requests wrk may have left in flight (they may commit)
    generator_cpu: float = 0.0  # seconds, when the generator is a child process (wrk)

    def merged(self, other: RunResult) -> RunResult:
        return RunResult(
            self.target,
            self.senders,
            self.seconds + other.seconds,
            self.requests + other.requests,
            self.alerts + other.alerts,
            self.latencies + other.latencies,
            self.statuses + other.statuses,
            self.errors + other.errors,
            self.accepted_alerts_total + other.accepted_alerts_total,
            self.requests_total + other.requests_total,
            self.slices + other.slices,
            self.in_flight_slack + other.in_flight_slack,
            self.generator_cpu + other.generator_cpu,
        )

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def aps(self) -> float:
        return self.alerts / self.seconds

    def percentile(self, q: float) -> float:
        if self.slices:
            # Per-slice percentiles from wrk: p50 weighted by requests, p99 the worst slice's.
            if q <= 0.5:
                total = sum(n for _, _, n in self.slices) or 1
                return sum(p50 * n for p50, _, n in self.slices) / total
            return max(p99 for _, p99, _ in self.slices)
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(
    target: str,
    url: str,
    senders: int,
    warmup: float,
    duration: float,
    run: str,
    rate: float | None = None,
) -> RunResult:
    """Closed loop (each sender posts again as soon as answered) or, with `rate`, open loop:
    the senders post on a fixed schedule totalling `rate` requests/s, and latency counts from
    the scheduled time, so a server that falls behind shows its queue in the percentiles."""
    result = RunResult(target, senders, duration)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=senders * 2, limit_per_host=senders * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = loop.time()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def send(index: int) -> None:
            sender = Sender(run, index, random.Random(f"{run}-{index}"))
            interval = senders / rate if rate else 0.0
            due = start + interval * index / senders
            while loop.time() < stop_at:
                body, new, resolving = sender.next_payload()
                if rate:
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    sent_at, due = due, due + interval
                else:
                    sent_at = loop.time()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    status = 0
                    if sent_at >= measure_from:
                        result.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                done_at = loop.time()
                result.requests_total += status != 0
                if status == 200:
                    sender.delivered(new, resolving)
                    result.accepted_alerts_total += ALERTS_PER_PAYLOAD
                # A request counts if it was sent inside the window; one in flight at the
                # end is finished (its commit must be verified) but is not counted.
                if measure_from <= sent_at and done_at <= stop_at:
                    result.statuses[status] += 1
                    if status == 200:
                        result.requests += 1
                        result.alerts += ALERTS_PER_PAYLOAD
                        result.latencies.append(done_at - sent_at)

        await asyncio.gather(*(send(i) for i in range(senders)))
    return result


LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ingest.lua")


async def drive_wrk(
    target: str, url: str, connections: int, warmup: float, duration: float, run: str
) -> RunResult:
    """wrk: one thread, `connections` connections, closed loop; a warm-up run first (its
    deliveries count for the database check, not for the figures)."""
    result = RunResult(target, connections, duration)
    for seconds, measured in ((warmup, False), (duration, True)):
        if seconds <= 0:
            continue
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = await asyncio.create_subprocess_exec(
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
            "-s", LUA, url, "--", f"{run}-{'m' if measured else 'w'}", TOKEN, str(connections),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        line = next((x for x in out.decode().splitlines() if x.startswith("WRK-RESULT ")), "")
        if process.returncode or not line:
            raise SystemExit(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
        got = json.loads(line.removeprefix("WRK-RESULT "))
        ok = got["requests"] - got["non_2xx"]
        result.requests_total += got["requests"]
        result.accepted_alerts_total += ok * ALERTS_PER_PAYLOAD
        result.in_flight_slack += connections
        if not measured:
            continue
        result.seconds = got["duration_us"] / 1e6
        result.requests += ok
        result.alerts += ok * ALERTS_PER_PAYLOAD
        result.statuses[200] += ok
        if got["non_2xx"]:
            result.statuses[-1] += got["non_2xx"]  # wrk counts them, not by status
        for kind in ("connect", "read", "write", "timeout"):
            if got[kind]:
                result.errors[kind] += got[kind]
        result.slices.append((got["p50_us"] / 1000, got["p99_us"] / 1000, ok))
        result.generator_cpu += (after.ru_utime + after.ru_stime) - (
            before.ru_utime + before.ru_stime
        )
    return result


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_snapshot(server_pid: int | None, url: str) -> dict[str, float]:
    """CPU seconds so far of the load generator, the server, and the PostgreSQL backends
    serving the bench's database (other databases on the cluster are not counted)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        pids = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return {
        "load generator": _cpu_seconds(os.getpid()),
        "server": _cpu_seconds(server_pid) if server_pid else 0.0,
        "postgres": sum(_cpu_seconds(row["pid"]) for row in pids),
    }


async def fetch_stats(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return dict(await response.json())


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per run")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds not measured before each slice"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternating slices per target and N (bare, infraai, bare, …), each "
        "duration/rounds long, so load from elsewhere falls on both",
    )
    parser.add_argument(
        "--senders", default="1,8,32,64", help="concurrency levels, comma-separated"
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL to use (default: a throwaway database on 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--only", choices=("infraai", "bare"), help="run one target only (no ratio)"
    )
    parser.add_argument(
        "--generator",
        choices=("wrk", "python"),
        default="wrk",
        help="the load generator: wrk (default; Debian package) or the Python senders",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="open loop: post on a schedule totalling this many requests/s (per target and "
        "N) instead of as fast as answered; latency then includes time queued",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="run the InfraAI server under cProfile, stats to FILE"
    )
    return parser.parse_args(argv)


def row(cells: list[str], widths: list[int]) -> str:
    return " | ".join(
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


async def bench(args: argparse.Namespace) -> int:
    levels = [int(n) for n in args.senders.split(",") if n.strip()]
    url = args.database_url
    throwaway = url is None
    if throwaway:
        url = await create_database("127.0.0.1", 5432)
    else:
        url = str(make_url(url).set(drivername="postgresql+asyncpg"))
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []
    failures = 0
    try:
        from core.db.schema import upgrade

        await asyncio.to_thread(upgrade, url)
        await install_policies(url)
        before = await db_state(url)
        if before.received:
            raise SystemExit(f"{make_url(url).database} already holds alerts; use an empty one")
        await seed_history(url)
        base = await db_state(url)

        targets: list[tuple[str, str]] = []
        pids: dict[str, int | None] = {}
        if args.generator == "wrk" and not args.rate and shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed: apt-get install wrk (or --generator python)")
        if args.only != "infraai":
            port = free_port()
            bare = context.Process(target=run_bare, args=(port,), name="bare", daemon=True)
            bare.start()
            processes.append(bare)
            await wait_ready(f"http://127.0.0.1:{port}", bare)
            targets.append(("bare", f"http://127.0.0.1:{port}/alerts"))
            pids["bare"] = bare.pid
        if args.only != "bare":
            port = free_port()
            server = context.Process(
                target=run_infraai,
                args=(url, port, TOKEN, args.profile),
                name="infraai",
                daemon=True,
            )
            server.start()
            processes.append(server)
            await wait_ready(f"http://127.0.0.1:{port}", server)
            targets.append(("infraai", f"http://127.0.0.1:{port}/alerts"))
            pids["infraai"] = server.pid

        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, loopback")
        print(
            f"database: {make_url(url).render_as_string()} (PostgreSQL), seeded with "
            f"{SEED_ALERTS} resolved alerts and {SEED_PROPOSALS} closed proposals, analysed"
        )
        print(f"mix: {MIX}")
        slices = f"{args.rounds} alternating slices of {args.duration / args.rounds:g} s"
        loop_kind = (
            f"open loop at {args.rate:g} requests/s in all"
            if args.rate
            else "wrk, 1 thread, closed loop over N connections"
            if args.generator == "wrk"
            else "closed loop (each sender posts again when answered)"
        )
        print(
            f"runs: {args.duration:g} s measured per target and N ({slices}, each after "
            f"{args.warmup:g} s warm-up), {loop_kind}"
        )
        print()
        widths = [8, 7, 8, 9, 7, 7, 17]
        header = ["target", "senders", "req/s", "alerts/s", "p50 ms", "p99 ms", "ratio to ceiling"]
        print(row(header, widths))
        print("-+-".join("-" * w for w in widths))
        accepted_total = slack_total = 0
        for n in levels:
            # Each target runs in `rounds` alternating slices (bare, infraai, bare, …) so
            # that load from elsewhere on the machine falls on both alike.
            totals: dict[str, RunResult] = {}
            cpu: dict[str, Counter[str]] = {}
            commit: Counter[str] = Counter()
            slice_seconds = args.duration / args.rounds
            for _round in range(args.rounds):
                for target, target_url in targets:
                    run = f"n{n}-{target}-{secrets.token_hex(2)}"
                    stats_url = target_url.replace("/alerts", "/bench/stats")
                    stats_before = await fetch_stats(stats_url) if target == "infraai" else {}
                    cpu_before = await cpu_snapshot(pids[target], url)
                    if args.generator == "wrk" and not args.rate:
                        result = await drive_wrk(
                            target, target_url, n, args.warmup, slice_seconds, run
                        )
                    else:
                        result = await drive(
                            target, target_url, n, args.warmup, slice_seconds, run, args.rate
                        )
                    cpu_after = await cpu_snapshot(pids[target], url)
                    stats_after = await fetch_stats(stats_url) if target == "infraai" else {}
                    totals[target] = totals[target].merged(result) if target in totals else result
                    spent = cpu.setdefault(target, Counter())
                    for name in cpu_after:
                        spent[name] += cpu_after[name] - cpu_before[name]
                    for name in ("batches", "deliveries", "gc_ms"):
                        if target == "infraai":
                            commit[name] += stats_after[name] - stats_before[name]
                    if target == "infraai":
                        commit["gc_max_ms"] = stats_after["gc_max_ms"]
            ceiling = totals["bare"].rps if "bare" in totals else None
            for target, _target_url in targets:
                result = totals[target]
                ratio = f"{result.rps / ceiling:.2f}" if target == "infraai" and ceiling else ""
                print(
                    row(
                        [
                            target,
                            str(n),
                            f"{result.rps:.0f}",
                            f"{result.aps:.0f}",
                            f"{result.percentile(0.50):.1f}",
                            f"{result.percentile(0.99):.1f}",
                            ratio,
                        ],
                        widths,
                    ),
                    flush=True,
                )
                served = result.requests_total or 1
                spent = dict(cpu[target])
                if result.generator_cpu:
                    spent["load generator"] = result.generator_cpu
                used = ", ".join(
                    f"{name} {seconds / served * 1000:.2f}"
                    for name, seconds in spent.items()
                    if target == "infraai" or name != "postgres"
                )
                print(f"         CPU ms per request: {used}")
                bad = {s: c for s, c in result.statuses.items() if s != 200}
                if bad or result.errors:
                    print(f"         non-200 answers: {bad} errors: {dict(result.errors)}")
                if target != "infraai":
                    continue
                batches, deliveries = commit["batches"], commit["deliveries"]
                print(
                    f"         group commit: {batches:.0f} transactions for {deliveries:.0f} "
                    f"deliveries ({deliveries / max(batches, 1):.1f} per commit); GC held the "
                    f"loop {commit['gc_ms']:.0f} ms, longest pause so far "
                    f"{commit['gc_max_ms']:.0f} ms"
                )
                accepted_total += result.accepted_alerts_total
                slack_total += result.in_flight_slack * ALERTS_PER_PAYLOAD
                await asyncio.sleep(0.5)  # deliveries wrk left in flight finish committing
                state = await db_state(url)
                received = state.received - base.received
                proposals = state.proposals - base.proposals
                problems = []
                if not accepted_total <= received <= accepted_total + slack_total:
                    problems.append(
                        f"times_received grew by {received}, "
                        f"{accepted_total} alerts were answered 200"
                    )
                if state.firing_unproposed:
                    problems.append(
                        f"{state.firing_unproposed} firing crash-looping pods without a proposal"
                    )
                if state.doubled:
                    problems.append(f"{state.doubled} alerts with more than one proposal")
                if state.open_dups:
                    problems.append(f"{state.open_dups} dedup keys with >1 open proposal")
                if problems:
                    failures += 1
                    print("         NOT VERIFIED: " + "; ".join(problems))
                else:
                    extra = received - accepted_total
                    in_flight = (
                        f", {extra} more from deliveries in flight at the end" if extra else ""
                    )
                    together = (
                        f"; {state.resolved_together} pods resolved in the commit that "
                        "received their firing, rightly without one"
                        if state.resolved_together
                        else ""
                    )
                    print(
                        f"         verified: no alert lost or doubled "
                        f"({accepted_total} alerts answered 2xx, all in times_received"
                        f"{in_flight}; {proposals} proposals: one for every firing "
                        f"crash-looping pod, never two{together})"
                    )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        if throwaway:
            await drop_database(url)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
