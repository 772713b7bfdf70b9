"""The assistant: a LangGraph agent on a local Ollama model that looks with read tools and
can only propose changes (see `assistant.py` for the entry point)."""
