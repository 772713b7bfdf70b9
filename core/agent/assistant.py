"""One question to the assistant: memory in, the graph run, memory out, a clear answer.

Whatever goes wrong with the model — Ollama down, too slow, the model not pulled or without
tool support, an empty or malformed reply — the asker gets one clear sentence naming the
model, the URL and what to do; never a traceback, and never a write.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from core.agent import (
    discovery_tools,
    grafana_tools,
    kubernetes_tools,
    memory,
    prometheus_tools,
)
from core.agent.graph import build_graph
from core.agent.prompt import SYSTEM_PROMPT
from core.agent.tools import TOOLS, Registry, ToolContext
from core.text import storable

log = logging.getLogger(__name__)

assert kubernetes_tools  # registers the Kubernetes read tools
assert grafana_tools  # registers the Grafana read tool (issue 9)
assert prometheus_tools  # registers the Prometheus read tools (issue 9)
assert discovery_tools  # registers assets_list and nmap_scan


@dataclass(frozen=True)
class Answer:
    text: str
    ok: bool
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class Assistant:
    def __init__(
        self,
        runtime: Any,
        *,
        model: Any = None,
        registry: Registry = TOOLS,
        max_steps: int = 4,
    ) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._url = settings.ollama_base_url
        self._model_name = settings.ollama_model
        self._timeout = float(settings.ollama_timeout_seconds)
        self._num_ctx = int(settings.ollama_num_ctx)
        self._registry = registry
        self._max_steps = max_steps
        self._model = model
        self._graph: Any = None

    def _compiled(self) -> Any:
        if self._graph is None:
            if self._model is None:  # through the port: core imports no adapter
                server = self._runtime.integrations.ollama()
                self._model = server.chat_model(num_ctx=self._num_ctx, timeout=self._timeout)
            self._graph = build_graph(
                self._model,
                self._registry,
                system_prompt=SYSTEM_PROMPT,
                runtime=self._runtime,
                max_steps=self._max_steps,
                output_limit=max(1000, self._num_ctx * 4 // 10),  # ~a tenth of the context
            )
        return self._graph

    async def ask(self, question: str, context: ToolContext) -> Answer:
        question = storable(question)  # a NUL or lone surrogate typed in chat: kept, replaced
        async with self._runtime.sessions() as session:
            history = await memory.load(session, context.conversation, self._num_ctx // 2)
        question_message = HumanMessage(question)
        try:
            # Built once, in a thread: the model client makes SSL contexts, the graph compiles.
            graph = self._graph or await asyncio.to_thread(self._compiled)
            result = await asyncio.wait_for(
                graph.ainvoke(
                    {"messages": [*history, question_message], "steps": 0},
                    config={"configurable": {"context": context}},
                ),
                # Every model call has the client timeout; the turn as a whole a few of them.
                timeout=self._timeout * (self._max_steps + 1),
            )
        except Exception as exc:
            text = self._explain(exc)
            log.warning("assistant turn failed: %s", text)
            log.debug("assistant turn failed", exc_info=exc)
            await self._save(context, [question_message, AIMessage(text)])
            return Answer(text, ok=False)
        new = result["messages"][len(history) :]
        final = new[-1] if new else None
        text = str(final.content).strip() if isinstance(final, AIMessage) else ""
        if not text:
            text = (
                f"The model {self._model_name} returned an empty answer; ask again, "
                "or try a larger model."
            )
            new = [*new, AIMessage(text)]
        calls = [
            {"name": c["name"], "args": c.get("args", {})}
            for m in new
            if isinstance(m, AIMessage)
            for c in m.tool_calls
        ]
        await self._save(context, new)
        return Answer(text, ok=True, tool_calls=calls)

    async def _save(self, context: ToolContext, messages: list[Any]) -> None:
        async with self._runtime.sessions() as session, session.begin():
            session.add_all(memory.rows_for(context.conversation, context.user, messages))

    def _explain(self, exc: BaseException) -> str:
        import httpx
        from pydantic import ValidationError

        model, url = self._model_name, self._url
        status = getattr(exc, "status_code", None)
        detail = str(getattr(exc, "error", "") or exc)
        if isinstance(exc, httpx.ConnectError):
            return (
                f"Ollama at {url} is unreachable: start it (`ollama serve`) or set OLLAMA_BASE_URL."
            )
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            return (
                f"The model {model} at {url} did not answer within {self._timeout:.0f} s: "
                "try again, a smaller model, or raise OLLAMA_TIMEOUT_SECONDS."
            )
        if status == 404:
            return f"The model {model} is not pulled at {url}: run `ollama pull {model}`."
        if status == 400 and "does not support tools" in detail:
            return (
                f"The model {model} does not support tools: choose one that does "
                "(qwen3, llama3.1) with OLLAMA_MODEL."
            )
        if isinstance(exc, ValidationError):
            return f"The model {model} sent a malformed reply (tool arguments); ask again."
        return f"The model {model} at {url} failed ({type(exc).__name__}); ask again."
