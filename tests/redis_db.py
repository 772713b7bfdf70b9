"""One Redis database number per test session, so concurrent sessions never flush each
other's queues (every stack flushes its database before it starts; the session empties it
when it ends, so the suite leaves no keys behind)."""

from __future__ import annotations

import atexit
import os

HOST = "127.0.0.1"
PORT = 6379
FALLBACK_DB = 15


def claim_redis_url() -> str:
    """Claim a free database (15, then 10 down to 1) with a lease in DB 0; released when the
    session ends. Databases 11–14 are the benchmarks'."""
    try:
        from redis import Redis

        admin = Redis(host=HOST, port=PORT, db=0, socket_connect_timeout=1)
        token = f"{os.getpid()}"
        for number in (15, *range(10, 0, -1)):  # 11–14 belong to the benchmarks
            key = f"infraai:test-db:{number}"
            if admin.set(key, token, nx=True, ex=3 * 3600):
                atexit.register(_release, admin, key, token, number)
                return f"redis://{HOST}:{PORT}/{number}"
    except Exception:  # Redis down: the tests that need it skip with a reason
        pass
    return f"redis://{HOST}:{PORT}/{FALLBACK_DB}"


def _release(admin: object, key: str, token: str, number: int) -> None:
    try:
        if admin.get(key) == token.encode():  # type: ignore[attr-defined]
            from redis import Redis

            Redis(host=HOST, port=PORT, db=number, socket_connect_timeout=1).flushdb()
            admin.delete(key)  # type: ignore[attr-defined]
    except Exception:
        pass
