"""CLI start-up: `infraai --help` and `infraai proposals` against `python -c pass`.

Each command runs N times as a fresh process (as a person or a script runs it); the table
shows the median and the worst wall time and the peak memory, and the baseline is the bare
interpreter in the same run. `proposals` reads a throwaway SQLite database (migrated first).
Targets: `--help` ≤ 0.3 s, `proposals` ≤ 0.8 s.

    .venv/bin/python -m bench.cli [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INFRAAI = str(Path(sys.executable).with_name("infraai"))
TARGETS = {"infraai --help": 0.3, "infraai proposals": 0.8}


def run(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float]:
    times, peak = [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _pid, _status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
        child.returncode = 0
        times.append(time.perf_counter() - started)
        peak = max(peak, usage.ru_maxrss / 1024)
    return statistics.median(times), max(times), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/cli.db"}
        subprocess.run([INFRAAI, "migrate"], env=env, capture_output=True, check=True)
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("infraai --help", [INFRAAI, "--help"]),
            ("infraai proposals", [INFRAAI, "proposals"]),
        ]
        print(f"{runs} runs each, fresh processes; peak RSS of the largest run")
        print()
        print("| command | median s | worst s | peak MB | target |")
        print("| --- | ---: | ---: | ---: | --- |")
        for label, argv in rows:
            median, worst, peak = run(argv, env, runs)
            target = TARGETS.get(label)
            verdict = f"≤ {target} s: {'met' if median <= target else 'not met'}" if target else ""
            print(f"| {label} | {median:.2f} | {worst:.2f} | {peak:.0f} | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
