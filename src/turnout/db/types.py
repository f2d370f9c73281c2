"""Column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database (psiTurk's storage, so old rows read right).

    turnout itself only writes aware values; naive ones from project code are kept as given.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Project code written for psiTurk sets naive datetimes (datetime.now()) and
            # psiTurk stored them as they were: take them as already UTC.
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# psiTurk stores participant data as MySQL LONGTEXT (TEXT caps at 64 KiB there).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
