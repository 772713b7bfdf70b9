"""The assistant's cost outside the model: a turn through InfraAI against the bare model call.

The model is the fake Ollama (tests/fakes/ollama.py, its own thread and loop) answering at
once, so what remains is InfraAI's share of a turn: loading and trimming the conversation
from the database, building the graph's prompt with the tool schemas, the LangGraph loop, a
tool call through the registry, and writing the turn back. The baseline, in the same run, is
the bare `ChatOllama` call (tools bound) against the same fake, with the same prompt: a plain
turn is one model call, a turn with one tool call two. Overhead = the turn's percentile minus
the baseline's for the same number of model calls. Also printed: the prompt InfraAI sends
before any history (system prompt + tool schemas), in tokens (about four characters each).

    .venv/bin/python -m bench.agent [--turns 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import HumanMessage, SystemMessage

from adapters.ollama import OllamaAdapter
from core.agent.prompt import SYSTEM_PROMPT
from core.agent.tools import TOOLS, ToolContext
from core.config import Settings
from core.db.schema import upgrade
from core.runtime import Runtime
from tests.fakes.ollama import MODEL, FakeOllama, Turn

TARGET_MS = 20.0
TARGET_TOKENS = 1500


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def measure(runtime: Runtime, fake: FakeOllama, turns: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"bare 1": [], "bare 2": [], "turn": [], "tool turn": []}
    server = OllamaAdapter(fake.url, MODEL)
    model = server.chat_model(num_ctx=8192, timeout=30).bind_tools(TOOLS.schemas())
    prompt = [SystemMessage(SYSTEM_PROMPT), HumanMessage("Is anything firing?")]
    for i in range(turns):
        fake.script(Turn(content="Nothing."))
        started = time.perf_counter()
        await model.ainvoke(prompt)
        one = time.perf_counter() - started
        timings["bare 1"].append(one * 1000)
        fake.script(Turn(content="Nothing."))
        started = time.perf_counter()
        await model.ainvoke(prompt)
        timings["bare 2"].append((one + time.perf_counter() - started) * 1000)

        context = ToolContext(user="U0BENCH", conversation=f"bench:{i}")
        fake.script(Turn(content="Nothing."))
        started = time.perf_counter()
        await (await runtime.assistant()).ask("Is anything firing?", context)
        timings["turn"].append((time.perf_counter() - started) * 1000)
        fake.script(Turn.calls(("policies_list", {})), Turn(content="No policies."))
        started = time.perf_counter()
        await (await runtime.assistant()).ask("Which policies?", context)
        timings["tool turn"].append((time.perf_counter() - started) * 1000)
    return timings


async def main_async(turns: int) -> int:
    fake = FakeOllama()
    with fake.run_in_thread(), tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        await asyncio.to_thread(upgrade, url)
        settings = Settings(database_url=url, ollama_base_url=fake.url, ollama_model=MODEL)
        runtime = Runtime.build(settings)
        try:
            await measure(runtime, fake, 20)  # warm-up: imports, connections, compiled graph
            timings = await measure(runtime, fake, turns)
        finally:
            await runtime.close()
    tokens = (len(SYSTEM_PROMPT) + len(json.dumps(TOOLS.schemas()))) // 4
    print(f"{turns} turns of each kind; model: the fake Ollama answering at once (loopback)")
    print(
        f"prompt before history: system prompt + {len(TOOLS.tools)} tool schemas ≈ {tokens} "
        f"tokens (target ≤ {TARGET_TOKENS})"
    )
    print()
    print("| run | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = [
        ("bare ChatOllama call", "bare 1", None),
        ("2 bare calls", "bare 2", None),
        ("assistant turn (1 model call)", "turn", "bare 1"),
        ("assistant turn with a tool (2 calls)", "tool turn", "bare 2"),
    ]
    worst = 0.0
    for label, key, base in rows:
        p50, p99 = percentiles(timings[key])
        if base is None:
            print(f"| {label} | {p50:.1f} | {p99:.1f} | | |")
            continue
        b50, b99 = percentiles(timings[base])
        worst = max(worst, p50 - b50)
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {p50 - b50:.1f} | {p99 - b99:.1f} |")
    print()
    print(
        f"target: overhead ≤ {TARGET_MS:g} ms per turn — "
        f"{'met' if worst <= TARGET_MS else 'not met'} at p50 ({worst:.1f} ms)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    return asyncio.run(main_async(parser.parse_args().turns))


if __name__ == "__main__":
    raise SystemExit(main())
