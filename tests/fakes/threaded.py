"""Serving a fake from a thread and loop of its own.

A fake on the test's own loop cannot answer a client that blocks that loop (the Kubernetes
client and ChatOllama's synchronous calls do), so such fakes run here instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any


@contextlib.contextmanager
def serve_in_thread(
    start: Callable[[], Coroutine[Any, Any, str]],
    stop: Callable[[], Coroutine[Any, Any, None]],
    name: str,
) -> Iterator[str]:
    """Run `start()` on a new loop in a daemon thread, yield what it returns (the URL), and
    `stop()` it there on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
