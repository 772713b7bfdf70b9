"""The assistant's LangGraph: a model node and a tools node, looping until an answer.

Two nodes rather than a prebuilt agent: the loop is bounded by `max_steps` (model calls per
question), tools run through InfraAI's registry (status objects, caps, redaction, the run's
context for who asks), and nothing in the graph can write — writes are proposals, made by a
tool that goes through the same path as an alert's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from core.agent.tools import Registry, ToolContext, ToolResult

log = logging.getLogger(__name__)


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int


def build_graph(
    model: BaseChatModel,
    registry: Registry,
    *,
    system_prompt: str,
    runtime: Any,
    max_steps: int = 4,
    output_limit: int = 3000,
) -> Any:
    """The compiled graph; run it with `config={"configurable": {"context": ToolContext}}`."""
    bound = model.bind_tools(registry.schemas())

    async def call_model(state: AgentState) -> dict[str, Any]:
        last_step = state["steps"] + 1 >= max_steps
        prompt: list[AnyMessage] = [SystemMessage(system_prompt), *state["messages"]]
        if last_step:
            # The last model call answers with what it has: no tools offered.
            reply = await model.ainvoke(prompt)
        else:
            reply = await bound.ainvoke(prompt)
        return {"messages": [reply], "steps": state["steps"] + 1}

    async def call_tools(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        context: ToolContext = config["configurable"]["context"]
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        if context.progress is not None:
            said = ", ".join(
                dict.fromkeys(registry.doing(c["name"], c.get("args")) for c in last.tool_calls)
            )
            try:
                await context.progress(said[:1].upper() + said[1:] + "…")
            except Exception:  # progress is a courtesy: it never fails the answer
                log.warning("progress not shown", exc_info=True)
        results: Sequence[ToolResult] = await asyncio.gather(
            *(
                registry.call(runtime, call["name"], call.get("args"), context)
                for call in last.tool_calls
            )
        )
        return {
            "messages": [
                ToolMessage(
                    result.render(output_limit),
                    tool_call_id=call.get("id") or call["name"],
                    name=call["name"],
                    status="error" if result.status == "error" else "success",
                )
                for call, result in zip(last.tool_calls, results, strict=True)
            ]
        }

    def route(state: AgentState) -> str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls and state["steps"] < max_steps:
            return "tools"
        return END

    graph = StateGraph(AgentState)
    graph.add_node("model", call_model)
    graph.add_node("tools", call_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile()
