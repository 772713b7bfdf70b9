"""Ollama: the chat model (`ChatOllama`) and a health check of the configured model.

`num_ctx` is always sent: Ollama silently cuts a prompt past its default context and the
system prompt goes first. The client timeout is explicit (the default waits for ever), and
`keep_alive` keeps the model loaded between questions.
"""

from __future__ import annotations

from typing import Any

import httpx

KEEP_ALIVE = "30m"


def chat_model(base_url: str, model: str, *, num_ctx: int, timeout: float) -> Any:
    from langchain_ollama import ChatOllama  # heavy: loaded when the assistant first runs

    return ChatOllama(
        model=model,
        base_url=base_url,
        num_ctx=num_ctx,
        keep_alive=KEEP_ALIVE,
        client_kwargs={"timeout": timeout},
    )


async def model_health(
    base_url: str, model: str, *, client_timeout: float = 3.0
) -> tuple[str, str]:
    """("ok" | "unreachable" | "not pulled" | "no tool support", detail) from /api/tags and
    /api/show, as `/infraai status` reports it."""
    wanted = model if ":" in model else f"{model}:latest"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=client_timeout) as client:
            tags = (await client.get("/api/tags")).json()
            names = {m.get("name") for m in tags.get("models", [])}
            if wanted not in names and model not in names:
                return (
                    "not pulled",
                    f"model {model} is not pulled at {base_url}: ollama pull {model}",
                )
            show = await client.post("/api/show", json={"model": model})
            capabilities = show.json().get("capabilities") or []
    except (httpx.HTTPError, ValueError) as exc:
        return "unreachable", f"Ollama at {base_url} is unreachable ({type(exc).__name__})"
    if "tools" not in capabilities:
        return "no tool support", f"model {model} does not support tools"
    return "ok", f"{model} at {base_url}"
