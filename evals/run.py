"""`make eval`: the assistant's cases against the configured Ollama model, N runs each.

    .venv/bin/python -m evals.run [--runs 3] [--case ID …]

Uses OLLAMA_BASE_URL / OLLAMA_MODEL / OLLAMA_NUM_CTX / OLLAMA_TIMEOUT_SECONDS as the bot does,
and a throwaway SQLite database for the conversation memory. Prints the pass rate per case;
the tool results come from the recordings in evals/cases.yaml, so no cluster is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_settings
from core.db.schema import upgrade
from core.runtime import Runtime
from evals.harness import Score, load_cases, run_case, table


async def _main(runs: int, only: list[str]) -> int:
    cases = [c for c in load_cases() if not only or c.id in only]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/eval.db"
        await asyncio.to_thread(upgrade, url)
        settings = load_settings().model_copy(update={"database_url": url, "redis_url": None})
        runtime = Runtime.build(settings)
        print(f"model {settings.ollama_model} at {settings.ollama_base_url}, {runs} run(s)")
        results: dict[str, list[Score]] = {}
        try:
            for case in cases:
                for run in range(runs):
                    results.setdefault(case.id, []).append(await run_case(runtime, case, run=run))
        finally:
            await runtime.close()
    print(table(results))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--case", action="append", default=[], help="only this case (repeat)")
    args = parser.parse_args()
    return asyncio.run(_main(args.runs, args.case))


if __name__ == "__main__":
    raise SystemExit(main())
