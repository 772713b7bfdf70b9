"""A scripted fake of Ollama's HTTP API: `/api/chat`, `/api/tags`, `/api/show`.

No model weights can be fetched on the development machines, so the assistant's tests script
the model's turns instead — and the fake speaks Ollama's wire format, so the real
`ChatOllama` client (not a stand-in model object) is what the tests exercise:

* `/api/chat` streams NDJSON (`application/x-ndjson`) when the request says `"stream": true`
  (ChatOllama's default): content chunks with `done: false`, one chunk carrying
  `message.tool_calls[].function.{name, arguments}` (arguments a JSON *object*; small models
  sometimes send a string, which a script can ask for), and a final `done: true` chunk with
  `prompt_eval_count` / `eval_count`. Without streaming, one JSON object.
* Failure shapes Ollama really has: 404 `model "…" not found`, 400 `… does not support tools`,
  an empty message, a slow turn (`delay`).

Scripting: `fake.script(Turn(...), ...)` queues the model's next turns; each `/api/chat` call
takes one. A callable turn receives the request (messages, tools) and returns a Turn, so a
test can answer from what the model was shown. Every request is recorded (`requests`).

The server runs in its own thread and loop (`run_in_thread()`): ChatOllama's synchronous
calls (`validate_model_on_init`) would otherwise block an in-process fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_in_thread

MODEL = "llama3.1"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str  # a str is sent as a JSON string, as small models do


@dataclass(frozen=True)
class Turn:
    """One model turn: text, tool calls, or a failure."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    status: int = 200
    error: str = ""
    delay: float = 0.0

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any] | str]) -> Turn:
        return cls(tool_calls=tuple(ToolCall(name, args) for name, args in calls))


Script = Turn | Callable[[dict[str, Any]], Turn]


@dataclass
class FakeOllama:
    models: dict[str, list[str]] = field(default_factory=lambda: {MODEL: ["completion", "tools"]})
    requests: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens_per_char: float = 0.25
    _turns: deque[Script] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    url: str = ""

    def script(self, *turns: Script) -> None:
        self._turns.extend(turns)

    @property
    def chats(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("path") == "/api/chat"]

    # ---- serving ------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/show", self._show)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def run_in_thread(self) -> contextlib.AbstractContextManager[str]:
        """Serve from a background thread's own loop, for synchronous clients."""
        return serve_in_thread(self.start, self.stop, "fake-ollama")

    # ---- the API ------------------------------------------------------------------------

    async def _tags(self, _request: web.Request) -> web.Response:
        models = [{"name": f"{m}:latest", "model": f"{m}:latest"} for m in self.models]
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = str(body.get("model") or body.get("name") or "").removesuffix(":latest")
        if name not in self.models:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response({"capabilities": self.models[name], "details": {}})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"path": "/api/chat", **body})
        name = str(body.get("model", "")).removesuffix(":latest")
        if name not in self.models:
            return web.json_response(
                {"error": f'model "{name}" not found, try pulling it first'}, status=404
            )
        if body.get("tools") and "tools" not in self.models[name]:
            return web.json_response(
                {"error": f"registry.ollama.ai/library/{name}:latest does not support tools"},
                status=400,
            )
        script = self._turns.popleft() if self._turns else Turn(content="(no scripted turn)")
        turn = script(body) if callable(script) else script
        if turn.delay:
            await asyncio.sleep(turn.delay)
        if turn.status != 200:
            return web.json_response({"error": turn.error or "failed"}, status=turn.status)
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        final = {
            "model": body.get("model"),
            "created_at": "2026-12-02T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": int(prompt * self.prompt_tokens_per_char),
            "eval_count": len(turn.content) // 4 + 1,
        }
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.tool_calls:
            message["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in turn.tool_calls
            ]
        if not body.get("stream", True):
            return web.json_response({**final, "message": message})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        words = turn.content.split(" ") if turn.content else []
        for index, word in enumerate(words):
            chunk = word if index == len(words) - 1 else word + " "
            await response.write(_line({**final, "done": False, "message": _text(chunk)}))
        if turn.tool_calls:
            calls = {**_text(""), "tool_calls": message["tool_calls"]}
            await response.write(_line({**final, "done": False, "message": calls}))
        await response.write(_line(final))
        await response.write_eof()
        return response


def _text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode() + b"\n"
