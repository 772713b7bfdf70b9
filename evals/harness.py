"""The assistant's evaluation harness: recorded cases, run against a model, scored.

HolmesGPT-style. Each case (evals/cases.yaml) has the question; the tool results, recorded
and keyed by tool + arguments (the model sees exactly these, so a case is repeatable and
needs no cluster); the tool calls expected (the trajectory, in order); calls that must never
happen (a write during an injection); and facts the answer must contain. `run_case` runs the
real graph — the real `Assistant` with its prompt and tool schemas — with the tools replaced
by the recordings, and scores one run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from core.agent.assistant import Assistant
from core.agent.tools import TOOLS, Registry, Tool, ToolContext, ToolResult

CASES = Path(__file__).resolve().parent / "cases.yaml"


class Recording(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: str = "ok"
    data: Any = None
    message: str = ""


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    question: str
    recorded: list[Recording] = Field(default_factory=list)
    expect_calls: list[str] = Field(default_factory=list)
    never_calls: list[str] = Field(default_factory=list)
    answer_contains: list[str] = Field(default_factory=list)
    injection: bool = False


def load_cases(path: Path = CASES) -> list[Case]:
    return [Case.model_validate(item) for item in yaml.safe_load(path.read_text())["cases"]]


def _same_args(recorded: dict[str, Any], given: dict[str, Any]) -> bool:
    """Recorded arguments must all match; arguments the recording leaves out are free."""
    return all(given.get(k) == v for k, v in recorded.items())


def recorded_registry(case: Case, calls: list[tuple[str, dict[str, Any]]]) -> Registry:
    """The real tools' names and schemas, answering from the case's recordings."""
    registry = Registry()
    for tool in TOOLS.tools.values():

        async def run(
            _runtime: Any, args: BaseModel, _ctx: ToolContext, name: str = tool.name
        ) -> ToolResult:
            given = args.model_dump(exclude_none=True)
            calls.append((name, given))
            for rec in case.recorded:
                if rec.tool == name and _same_args(rec.args, given):
                    return ToolResult(rec.status, rec.data, rec.message)  # type: ignore[arg-type]
            return ToolResult("no data", message="nothing recorded for these arguments")

        registry.add(Tool(tool.name, tool.description, tool.args, run, tool.doing))
    return registry


@dataclass
class Score:
    case: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)


def _in_order(expected: list[str], made: list[str]) -> bool:
    remaining = iter(made)
    return all(name in remaining for name in expected)


def score(case: Case, answer: str, ok: bool, calls: list[tuple[str, dict[str, Any]]]) -> Score:
    made = [name for name, _ in calls]
    problems = []
    if not ok:
        problems.append(f"the turn failed: {answer}")
    if not _in_order(case.expect_calls, made):
        problems.append(f"expected calls {case.expect_calls}, made {made}")
    for name in case.never_calls:
        if name in made:
            problems.append(f"called {name}, which must never happen here")
    lowered = answer.lower()
    for fact in case.answer_contains:
        if fact.lower() not in lowered:
            problems.append(f"the answer lacks {fact!r}")
    return Score(case.id, not problems, problems, made)


async def run_case(runtime: Any, case: Case, *, model: Any = None, run: int = 0) -> Score:
    calls: list[tuple[str, dict[str, Any]]] = []
    assistant = Assistant(runtime, model=model, registry=recorded_registry(case, calls))
    context = ToolContext(user="U0EVAL", conversation=f"eval:{case.id}:{run}")
    answer = await assistant.ask(case.question, context)
    return score(case, answer.text, answer.ok, calls)


def table(results: dict[str, list[Score]]) -> str:
    """Pass rate per case, and overall, as a fixed-width table."""
    width = max([len("case"), *(len(c) for c in results)])
    lines = [f"{'case':<{width}}  passed  rate  first problem"]
    total = passed = 0
    for case, scores in results.items():
        good = sum(s.passed for s in scores)
        total, passed = total + len(scores), passed + good
        problem = next((s.problems[0] for s in scores if s.problems), "")
        rate = good / len(scores)
        lines.append(f"{case:<{width}}  {good:>2}/{len(scores):<3} {rate:>4.0%}  {problem[:60]}")
    lines.append(f"{'all':<{width}}  {passed:>2}/{total:<3} {passed / max(total, 1):>4.0%}")
    return "\n".join(lines)


def tool_names(cases: Iterable[Case]) -> set[str]:
    names: set[str] = set()
    for case in cases:
        names.update(case.expect_calls, case.never_calls, (r.tool for r in case.recorded))
    return names


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
