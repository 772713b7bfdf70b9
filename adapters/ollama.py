"""Ollama: the chat model (`ChatOllama`) and a health check of the configured model.

`num_ctx` is always sent: Ollama silently cuts a prompt past its default context and the
system prompt goes first. The client timeout is explicit (the default waits for ever), and
`keep_alive` keeps the model loaded between questions. Imports nothing of InfraAI's.
"""

from __future__ import annotations

from typing import Any

import httpx

KEEP_ALIVE = "30m"


class OllamaError(Exception):
    """A call to Ollama failed; `transient` when trying again later may succeed."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


class OllamaNotConfigured(Exception):
    """Ollama has no usable address."""


class OllamaAdapter:
    def __init__(self, base_url: str, model: str, *, request_timeout: float = 3.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise OllamaNotConfigured(f"OLLAMA_BASE_URL must be http(s)://…, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.request_timeout = request_timeout

    def chat_model(self, *, num_ctx: int, timeout: float) -> Any:
        """The LangChain chat model, with `num_ctx`, the client timeout and `keep_alive`."""
        from langchain_ollama import ChatOllama  # heavy: loaded when the assistant first runs

        return ChatOllama(
            model=self.model,
            base_url=self.base_url,
            num_ctx=num_ctx,
            keep_alive=KEEP_ALIVE,
            client_kwargs={"timeout": timeout},
        )

    def model_state(self) -> tuple[str, str]:
        """("ok" | "unreachable" | "not pulled" | "no tool support", detail), from /api/tags
        and /api/show's capabilities."""
        model, url = self.model, self.base_url
        wanted = model if ":" in model else f"{model}:latest"
        try:
            with httpx.Client(base_url=url, timeout=self.request_timeout) as client:
                tags = client.get("/api/tags").json()
                names = {m.get("name") for m in tags.get("models", [])}
                if wanted not in names and model not in names:
                    return (
                        "not pulled",
                        f"model {model} is not pulled at {url}: ollama pull {model}",
                    )
                show = client.post("/api/show", json={"model": model}).json()
        except (httpx.HTTPError, ValueError) as exc:
            return "unreachable", f"Ollama at {url} is unreachable ({type(exc).__name__})"
        if "tools" not in (show.get("capabilities") or []):
            return "no tool support", f"model {model} at {url} does not support tools"
        return "ok", f"model {model} at {url}, with tool support"

    def health(self) -> tuple[bool, str]:
        state, detail = self.model_state()
        return state == "ok", detail if state == "ok" else f"{state}: {detail}"

    def close(self) -> None:
        """Nothing held between calls."""
