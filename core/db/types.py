"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the backend keeps.

    SQLite stores no zone and hands back naive datetimes; comparing those with aware ones
    raises, so every value leaving the database is made aware here, once.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _JSON(sa.TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL.

    A decorator rather than `JSON().with_variant(JSONB(), "postgresql")`: the variant needs
    the PostgreSQL dialect at import, ~70 ms that every CLI command on SQLite paid (the
    `infraai proposals` budget is 0.8 s); here it is imported when a PostgreSQL connection
    first needs the type.
    """

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


JSONType: sa.types.TypeEngine[Any] = _JSON()


def utcnow() -> datetime:
    return datetime.now(UTC)
