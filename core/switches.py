"""Runtime switches kept in the database so every process and restart sees the same value."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.db.models import Switch
from core.db.types import utcnow

AUTO_PAUSED = "auto_paused"


async def get_switch(session: AsyncSession, name: str) -> bool:
    value = await session.scalar(sa.select(Switch.value).where(Switch.name == name))
    return bool(value)


async def set_switch(session: AsyncSession, name: str, value: bool, actor: str) -> bool:
    """Set a switch; returns whether it changed. Audited as `<name>.on` / `<name>.off`."""
    row = await session.scalar(sa.select(Switch).where(Switch.name == name))
    if row is None:
        row = Switch(name=name, value=not value)
        session.add(row)
    if row.value == value:
        return False
    row.value, row.updated_by, row.updated_at = value, actor, utcnow()
    record(session, actor, "pause" if value else "resume", name)
    return True
