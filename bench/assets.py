"""Asset upserts on PostgreSQL: a scan's 10,000 hosts into `assets`, against a bare COPY.

Numbers, not pass/fail. A synthetic scan (10,000 up hosts with one to four open ports each,
a quarter with a hostname) is written by InfraAI's own code, `core.discovery.store`:

* `upsert, new`: `upsert_up` into an empty `assets` (every row an insert);
* `upsert, again`: the same call over the rows now there (every row a conflict → update);
* `record, changed`: what a rescan does — read the known rows, work out what changed, upsert
  (a tenth of the hosts have a port more);

against the floor for putting those rows in a table on this server:

* `COPY`: asyncpg's `copy_records_to_table` into an empty copy of `assets` (no conflict
  handling, no JSON built in SQL);
* `unnest insert`: the same arrays as the upsert, a plain `INSERT … SELECT FROM unnest`.

Each is run `--runs` times on a throwaway database; the median is shown with rows/s and its
ratio to COPY.

    .venv/bin/python -m bench.assets [--hosts 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from bench.throwaway import asyncpg_dsn, create_database, drop_database
from core.db.engine import create_engine, session_factory
from core.db.schema import upgrade
from core.db.types import utcnow
from core.discovery import store

SEED = 20261202
SERVICES = [(22, "ssh"), (80, "http"), (443, "https"), (5432, "postgresql"), (6379, "redis")]


def synthetic_scan(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` up hosts in 10.0.0.0/8 (addresses only: nothing is scanned)."""
    hosts = []
    for i in range(count):
        ports = rng.sample(SERVICES, rng.randint(1, 4))
        hosts.append(
            {
                "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                "up": True,
                "hostname": f"host-{i}.example" if i % 4 == 0 else None,
                "mac": None,
                "vendor": None,
                "ports": [
                    {"port": p, "protocol": "tcp", "service": name} for p, name in sorted(ports)
                ],
            }
        )
    return hosts


def rescan(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same hosts, a tenth with port 8080 opened."""
    out = []
    for i, host in enumerate(hosts):
        if i % 10 == 0:
            host = {**host, "ports": [*host["ports"], {"port": 8080, "protocol": "tcp"}]}
        out.append(host)
    return out


async def timed(
    runs: int, before: Callable[[], Awaitable[None]], body: Callable[[], Awaitable[Any]]
) -> list[float]:
    times = []
    for _ in range(runs):
        await before()
        start = time.perf_counter()
        await body()
        times.append(time.perf_counter() - start)
    return times


async def main(hosts_count: int, runs: int) -> None:
    url = await create_database("127.0.0.1", 5432, prefix="infraai_bench_assets")
    engine = create_engine(url)
    try:
        await asyncio.to_thread(upgrade, url)
        sessions = session_factory(engine)
        raw = await asyncpg.connect(asyncpg_dsn(url))
        await raw.execute("CREATE TABLE assets_copy (LIKE assets INCLUDING ALL)")
        hosts = synthetic_scan(hosts_count, random.Random(SEED))
        changed = rescan(hosts)
        now = utcnow()
        stored = [json.dumps(store.stored_ports(h)) for h in hosts]
        records = [
            (i + 1, h["address"], h["hostname"], None, None, None, stored[i], True, now, now)
            for i, h in enumerate(hosts)
        ]
        columns = "id address hostname mac vendor os_guess open_ports up first_seen last_seen"

        async def empty() -> None:
            await raw.execute("TRUNCATE assets, assets_copy")

        async def nothing() -> None:
            return None

        async def upsert(rows: list[dict[str, Any]]) -> None:
            async with sessions() as session, session.begin():
                await store.upsert_up(session, rows, utcnow())

        async def record(rows: list[dict[str, Any]]) -> None:
            async with sessions() as session, session.begin():
                await store.record(session, rows, utcnow())

        async def reset_then_fill() -> None:
            await empty()
            await upsert(hosts)

        async def copy() -> None:
            await raw.copy_records_to_table("assets_copy", records=records, columns=columns.split())

        async def unnest_insert() -> None:
            await raw.execute(
                "INSERT INTO assets_copy (address, hostname, open_ports, up, first_seen, "
                "last_seen) SELECT a, h, p::jsonb, true, $4, $4 FROM "
                "unnest($1::varchar[], $2::varchar[], $3::text[]) AS t(a, h, p)",
                [h["address"] for h in hosts],
                [h["hostname"] for h in hosts],
                stored,
                now,
            )

        results = {
            "COPY (floor)": await timed(runs, empty, copy),
            "unnest insert": await timed(runs, empty, unnest_insert),
            "upsert, new": await timed(runs, empty, lambda: upsert(hosts)),
        }
        await reset_then_fill()
        results["upsert, again"] = await timed(runs, nothing, lambda: upsert(hosts))
        results["record, changed"] = await timed(runs, reset_then_fill, lambda: record(changed))
        rows = await raw.fetchval("SELECT count(*) FROM assets")
        assert rows == hosts_count, rows  # one row per address, however often upserted
        await raw.close()
    finally:
        await engine.dispose()
        await drop_database(url)

    floor = statistics.median(results["COPY (floor)"])
    print(f"\n{hosts_count:,} hosts, median of {runs} runs, PostgreSQL on 127.0.0.1\n")
    print("| write | median ms | rows/s | × COPY |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in results.items():
        median = statistics.median(times)
        rate = hosts_count / median
        print(f"| {name} | {median * 1000:.1f} | {rate:,.0f} | {median / floor:.1f}× |")
    print("\n× COPY = median time / COPY's median time for the same rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.hosts, args.runs))
