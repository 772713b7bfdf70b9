"""Throwaway PostgreSQL databases and free ports for the benchmarks."""

from __future__ import annotations

import secrets
import socket

import asyncpg
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(host: str, port: int, prefix: str = "infraai_bench") -> str:
    """A new empty database on a trust-auth server; the caller migrates and drops it."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host=host, port=port, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://postgres@{host}:{port}/{name}"


async def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(asyncpg_dsn(str(parsed.set(database="postgres"))))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await admin.close()
