"""End to end through the real bot: alert → Slack message, click → ack, click → job queued,
and Slack's ack latency while an alert storm runs — measured from the outside.

The bot is `infraai serve` in its own process (HTTP mode), on a throwaway PostgreSQL database
and Redis DB 13 (flushed), posting to the fake Slack Web API from `tests/fakes/slack.py`,
which runs on its own event loop in a thread of this process so its request timestamps are
the moment a message reached "Slack". Clicks are signed exactly as Slack signs them.

* alert → message: one alert at a time to a policy with its own `channel:`, so no message
  waits for the per-channel pacing (1 post/s); from the POST leaving here to the
  chat.postMessage arriving at the fake. Baseline: a bare aiohttp relay that answers the
  POST after one chat.postMessage to the same fake (the floor: two HTTP hops + slack_sdk).
* click → ack: a signed block_actions POST to /slack/events until its (empty) 200.
  Baseline: a bare aiohttp endpoint that checks the signature, parses the payload, acks.
* click → job queued: from the click leaving here to the RQ job's `enqueued_at`.
* ack under storm: the same clicks while another process posts 1,000 alerts/s (payloads of
  10, each a new crash-looping pod → a new proposal) for one policy and one channel, so
  ingest, grouping and the outbox all work at full tilt in the bot's one event loop.

    .venv/bin/python -m bench.e2e                     # throwaway DB on 127.0.0.1:5432
    .venv/bin/python -m bench.e2e --samples 300 --storm-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from bench.throwaway import asyncpg_dsn, create_database, drop_database, free_port
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import block_actions_body, signed_headers

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "xoxb-bench-" + secrets.token_hex(4)
SECRET = "bench-signing-" + secrets.token_hex(8)
ALERTS_TOKEN = "bench-alerts-" + secrets.token_hex(8)
APPROVER = "U0BENCH"
REDIS_URL = "redis://127.0.0.1:6379/13"
STORM_CHANNEL = "C0STORM"
CLICK_CHANNEL = "C0CLICK"
ALERTS_PER_PAYLOAD = 10

TARGETS = {
    "alert → message": ("p50", 30.0),
    "click → ack": ("p99", 50.0),
    "click → ack, storm": ("p99", 100.0),
}


# ---------------------------------------------------------------- numbers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Row:
    name: str
    samples_ms: list[float] = field(default_factory=list)
    note: str = ""

    def cells(self) -> list[str]:
        s = self.samples_ms
        if not s:
            return [self.name, "0", "-", "-", "-", "-", self.note]
        return [
            self.name,
            str(len(s)),
            f"{percentile(s, 50):.1f}",
            f"{percentile(s, 90):.1f}",
            f"{percentile(s, 99):.1f}",
            f"{max(s):.1f}",
            self.note,
        ]


def verdict(row: Row) -> str:
    target = TARGETS.get(row.name)
    if target is None or not row.samples_ms:
        return ""
    which, limit = target
    got = percentile(row.samples_ms, 50 if which == "p50" else 99)
    return f"{which} ≤ {limit:.0f} ms: {'met' if got <= limit else 'MISSED'} ({got:.1f})"


def print_table(rows: list[Row]) -> None:
    headers = ["measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "note"]
    table = [headers] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------- database and redis


def flush_redis() -> None:
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()


def enqueued_at(proposal_id: int) -> float | None:
    from redis import Redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(f"proposal-{proposal_id}", connection=Redis.from_url(REDIS_URL))
    except NoSuchJobError:
        return None
    when = job.enqueued_at
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def write_policies(path: Path, channels: int) -> None:
    params = {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"}
    policies: list[dict[str, Any]] = [
        {
            "name": f"latency-{i:03d}",
            "matchers": ['alertname="BenchLatency"', f'team="t{i:03d}"'],
            "action": "k8s.restart_pod",
            "params": params,
            "channel": f"C0LAT{i:03d}",
        }
        for i in range(channels)
    ]
    policies.append(
        {
            "name": "clicks",
            "matchers": ['alertname="BenchClick"'],
            "action": "k8s.restart_pod",
            "params": params,
            "channel": CLICK_CHANNEL,
        }
    )
    policies.append(
        {
            "name": "storm",
            "matchers": ['alertname="BenchStorm"'],
            "action": "k8s.restart_pod",
            "params": params,
            "channel": STORM_CHANNEL,
        }
    )
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False))


def alert(alertname: str, pod: str, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": alertname,
            "namespace": "bench",
            "pod": pod,
            "severity": "critical",
            **labels,
        },
        "annotations": {"summary": f"{pod} is crash looping"},
        "startsAt": "2026-11-29T08:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def webhook(*alerts: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "infraai",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": list(alerts),
        }
    ).encode()


# ---------------------------------------------------------------- child processes
# (spawned: they import this module afresh, so the per-run secrets travel as arguments)


def run_baseline(port: int, slack_api: str, secret: str, bot_token: str) -> None:
    """The floor, in its own process: /slack/events verifies the signature, parses the
    payload and acks; /alerts parses the JSON and relays one chat.postMessage to the fake."""
    from urllib.parse import parse_qs

    from aiohttp import web
    from slack_sdk.signature import SignatureVerifier
    from slack_sdk.web.async_client import AsyncWebClient

    verifier = SignatureVerifier(secret)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.is_valid(
            body,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        ):
            return web.Response(status=401)
        json.loads(parse_qs(body.decode())["payload"][0])
        return web.Response(status=200)

    async def alerts(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        labels = data["alerts"][0]["labels"]
        client: AsyncWebClient = request.app["client"]
        await client.chat_postMessage(channel=labels["channel"], text=labels["pod"])
        return web.json_response({"received": len(data["alerts"]), "proposals": 0})

    async def make() -> web.Application:
        app = web.Application()
        app["client"] = AsyncWebClient(token=bot_token, base_url=slack_api)
        app.router.add_post("/slack/events", events)
        app.router.add_post("/alerts", alerts)
        return app

    web.run_app(make(), host="127.0.0.1", port=port, access_log=None, print=None)


def run_storm(base: str, token: str, rate: int, seconds: float, result: Any) -> None:
    """Post `rate` alerts/s (payloads of 10, each alert a new pod) for `seconds` (child)."""

    async def storm() -> dict[str, Any]:
        interval = ALERTS_PER_PAYLOAD / rate
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        sent = 0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            loop = asyncio.get_running_loop()
            started = loop.time()
            tasks: set[asyncio.Task[None]] = set()

            async def post(index: int) -> None:
                body = webhook(
                    *(alert("BenchStorm", f"storm-{index}-{j}") for j in range(ALERTS_PER_PAYLOAD))
                )
                t0 = time.perf_counter()
                async with session.post(f"{base}/alerts", data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append((time.perf_counter() - t0) * 1000)

            index = 0
            while loop.time() - started < seconds:
                due = started + index * interval
                await asyncio.sleep(max(0.0, due - loop.time()))
                task = asyncio.create_task(post(index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                index += 1
                sent += ALERTS_PER_PAYLOAD
            await asyncio.gather(*tasks)
            elapsed = loop.time() - started
        return {
            "alerts": sent,
            "seconds": elapsed,
            "statuses": statuses,
            "latencies": latencies,
        }

    result.put(asyncio.run(storm()))


async def wait_http(base: str, path: str, alive: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not alive():
                raise SystemExit(f"{what} exited before answering")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(base + path) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)
    raise SystemExit(f"{what} did not answer within 60 s")


# ---------------------------------------------------------------- measurements


class Bench:
    def __init__(self, fake: FakeSlack, http: aiohttp.ClientSession, bot: str) -> None:
        self.fake = fake
        self.http = http
        self.bot = bot

    async def post_alert(self, base: str, body: bytes) -> float:
        """POST one webhook; returns the wall time it left here."""
        headers = {"Authorization": f"Bearer {ALERTS_TOKEN}", "Content-Type": "application/json"}
        sent = time.time()
        async with self.http.post(f"{base}/alerts", data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            await response.read()
        return sent

    async def first_post(self, channel: str) -> float:
        def find() -> float | None:
            for call in self.fake.calls_to("chat.postMessage", ok_only=True):
                if call.params.get("channel") == channel:
                    return call.time
            return None

        return await self.fake.wait_for(find, timeout=10.0)

    async def alert_to_message(self, base: str, channels: list[str], bare: bool) -> Row:
        row = Row("alert → message" + (" (bare relay)" if bare else ""))
        for i, channel in enumerate(channels):
            labels = {"channel": channel} if bare else {"team": f"t{i:03d}"}
            body = webhook(alert("BenchLatency", f"lat-{channel.lower()}", **labels))
            sent = await self.post_alert(base, body)
            arrived = await self.first_post(channel)
            row.samples_ms.append((arrived - sent) * 1000)
            await asyncio.sleep(0.01)
        return row

    async def click(self, base: str, proposal_id: int, message_ts: str) -> tuple[float, float]:
        """One signed approve click; returns (wall time sent, ack ms)."""
        body = block_actions_body(
            "proposal_approve",
            str(proposal_id),
            user_id=APPROVER,
            channel_id=CLICK_CHANNEL,
            message_ts=message_ts,
            response_url=self.fake.new_response_url(CLICK_CHANNEL, message_ts),
        )
        headers = signed_headers(SECRET, body)
        sent = time.time()
        t0 = time.perf_counter()
        async with self.http.post(f"{base}/slack/events", data=body, headers=headers) as r:
            await r.read()
            assert r.status == 200, r.status
        return sent, (time.perf_counter() - t0) * 1000

    async def clicks(
        self, base: str, ids: list[int], message_ts: str, per_second: float, name: str
    ) -> tuple[Row, dict[int, float]]:
        row = Row(name)
        sent_at: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, proposal_id in enumerate(ids):
            await asyncio.sleep(max(0.0, started + n / per_second - loop.time()))
            sent, ack = await self.click(base, proposal_id, message_ts)
            sent_at[proposal_id] = sent
            row.samples_ms.append(ack)
        return row, sent_at


async def proposal_ids(url: str, policy: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        found = await connection.fetch(
            "SELECT id FROM proposals WHERE policy_name = $1 ORDER BY id", policy
        )
    finally:
        await connection.close()
    return [r["id"] for r in found]


async def storm_state(url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        proposals = await connection.fetchval(
            "SELECT count(*) FROM proposals WHERE policy_name = 'storm'"
        )
        alerts = await connection.fetchval(
            "SELECT count(*) FROM alerts WHERE alertname = 'BenchStorm'"
        )
    finally:
        await connection.close()
    return int(proposals), int(alerts)


def max_posts_per_second(fake: FakeSlack, channel: str) -> int:
    times = sorted(
        c.time for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == channel
    )
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(args: argparse.Namespace) -> int:
    url = args.database_url or await create_database(
        args.pg_host, args.pg_port, "infraai_bench_e2e"
    )
    flush_redis()
    from core.db.schema import upgrade

    await asyncio.to_thread(upgrade, url)
    workdir = Path(tempfile.mkdtemp(prefix="infraai-bench-e2e-"))
    policies = workdir / "policies.yaml"
    write_policies(policies, args.samples)
    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start_in_thread()
    bot_port, bare_port = free_port(), free_port()
    bot, bare = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{bare_port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "INFRAAI_CHANNEL": CLICK_CHANNEL,
        "INFRAAI_APPROVERS": APPROVER,
        "INFRAAI_HOST": "127.0.0.1",
        "INFRAAI_PORT": str(bot_port),
        "ALERTS_TOKEN": ALERTS_TOKEN,
        "INFRAAI_POLICIES": str(policies),
        "PROPOSAL_TTL_SECONDS": "3600",
    }
    for name in ("SLACK_APP_TOKEN", "INFRAAI_DRY_RUN", "KUBECONFIG"):
        env.pop(name, None)
    log = (workdir / "bot.log").open("w")
    command = [str(ROOT / ".venv" / "bin" / "infraai"), "serve"]
    if args.profile:
        command = [sys.executable, "-m", "cProfile", "-o", args.profile, "-m", "bot.cli", "serve"]
    server = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir if not args.profile else ROOT,
    )
    context = multiprocessing.get_context("spawn")
    baseline = context.Process(
        target=run_baseline, args=(bare_port, fake.api_url, SECRET, BOT_TOKEN), daemon=True
    )
    baseline.start()
    rows: list[Row] = []
    notes: list[str] = []
    try:
        await wait_http(bot, "/healthz", lambda: server.returncode is None, "infraai serve")
        await wait_http(bare, "/", baseline.is_alive, "the baseline")
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16), timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            bench = Bench(fake, http, bot)
            # Warm-up: connections, Bolt's auth.test, the policy cache, first renders.
            await bench.post_alert(bot, webhook(alert("BenchClick", "warm-0")))
            await bench.first_post(CLICK_CHANNEL)
            [warm_id] = await proposal_ids(url, "clicks")
            await bench.click(bot, warm_id, "1700000000.000100")
            await bench.click(bare, warm_id, "1700000000.000100")

            channels = [f"C0LAT{i:03d}" for i in range(args.samples)]
            rows.append(await bench.alert_to_message(bot, channels, bare=False))
            bare_channels = [f"C0BARE{i:03d}" for i in range(args.samples)]
            rows.append(await bench.alert_to_message(bare, bare_channels, bare=True))

            # Proposals to click: a burst for the `clicks` policy (one grouped message).
            for start in range(0, args.clicks * 2, 50):
                await bench.post_alert(
                    bot,
                    webhook(*(alert("BenchClick", f"click-{i}") for i in range(start, start + 50))),
                )
            click_ids = (await proposal_ids(url, "clicks"))[1:]  # not the warm-up
            quiet_ids, storm_ids = click_ids[: args.clicks], click_ids[args.clicks :]
            group_ts = "1700000000.000100"

            quiet, quiet_sent = await bench.clicks(
                bot, quiet_ids, group_ts, args.click_rate, "click → ack"
            )
            rows.append(quiet)
            bare_row, _ = await bench.clicks(
                bare, quiet_ids, group_ts, args.click_rate, "click → ack (bare endpoint)"
            )
            rows.append(bare_row)

            # click → job queued: the RQ job's enqueued_at against the click leaving here.
            enqueue = Row("click → job queued")
            deadline = time.monotonic() + 30
            pending = dict(quiet_sent)
            while pending and time.monotonic() < deadline:
                for proposal_id, sent in list(pending.items()):
                    when = await asyncio.to_thread(enqueued_at, proposal_id)
                    if when is not None:
                        enqueue.samples_ms.append((when - sent) * 1000)
                        del pending[proposal_id]
                await asyncio.sleep(0.05)
            if pending:
                enqueue.note = f"{len(pending)} never queued"
            rows.append(enqueue)

            # The storm, from another process, with clicks running through it.
            result = context.Queue()
            storm = context.Process(
                target=run_storm,
                args=(bot, ALERTS_TOKEN, args.storm_rate, args.storm_seconds, result),
            )
            before_storm = time.time()
            storm.start()
            await asyncio.sleep(0.5)  # let it reach full rate before clicking
            clicks_during = max(1, int(args.click_rate * (args.storm_seconds - 1.0)))
            stormy, _ = await bench.clicks(
                bot,
                storm_ids[:clicks_during],
                group_ts,
                args.click_rate,
                "click → ack, storm",
            )
            stats = await asyncio.to_thread(result.get, True, args.storm_seconds + 120)
            storm.join(30)
            rows.append(stormy)
            posted = Row("storm POST /alerts", stats["latencies"])
            rate = stats["alerts"] / stats["seconds"]
            posted.note = f"{rate:.0f} alerts/s offered; statuses {stats['statuses']}"
            rows.append(posted)
            proposals, alerts = await storm_state(url)
            storm_posts = [
                c
                for c in fake.calls_to("chat.postMessage")
                if c.params.get("channel") == STORM_CHANNEL and c.time >= before_storm
            ]
            notes.append(
                f"storm: {stats['alerts']} alerts sent in {stats['seconds']:.1f} s; "
                f"{alerts} alerts and {proposals} proposals recorded; "
                f"{len(storm_posts)} posts to {STORM_CHANNEL} so far "
                f"(most in any 1 s: {max_posts_per_second(fake, STORM_CHANNEL)})"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
            notes.append("infraai serve did not stop within 30 s of SIGTERM (killed)")
        log.close()
        baseline.terminate()
        baseline.join(5)
        fake.stop_in_thread()
        if not args.database_url:
            await drop_database(url)
    for row in rows:
        row.note = "; ".join(x for x in (row.note, verdict(row)) if x)
    print()
    print(
        f"InfraAI end to end (infraai serve, HTTP mode, PostgreSQL + Redis, fake Slack), "
        f"{os.cpu_count()} CPUs"
    )
    print_table(rows)
    for note in notes:
        print(note)
    print(f"bot log: {workdir / 'bot.log'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an existing, empty PostgreSQL database")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--samples", type=int, default=200, help="alert → message samples")
    parser.add_argument("--clicks", type=int, default=200, help="clicks without the storm")
    parser.add_argument("--click-rate", type=float, default=40.0, help="clicks per second")
    parser.add_argument("--storm-rate", type=int, default=1000, help="alerts per second")
    parser.add_argument("--storm-seconds", type=float, default=6.0)
    parser.add_argument("--profile", help="run the bot under cProfile, stats to this file")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
