"""A manual clock several processes can share, for rehearsals served by more than one
process (gunicorn workers, the scheduler's job runner).

``turnout.clock.ManualClock`` lives in one process's memory: two server processes on one
marketplace store would each have their own "now", and one would settle the other's
future (expire HITs, auto-approve work) too early. ``SharedManualClock`` keeps the instant
in a SQLite file instead (the marketplace store itself is fine), so every process that
opens the same file reads and moves the same time. It satisfies ``turnout.clock.Clock``
and has ``advance``/``set`` like ``ManualClock``, so the control API can move it.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

__all__ = ["SharedManualClock"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SharedManualClock:
    """Time stored in ``path``; starts at ``start`` the first time the file gets a clock."""

    def __init__(self, path: str | os.PathLike[str], start: datetime | None = None) -> None:
        self.path = os.fspath(path)
        start = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SharedManualClock needs a timezone-aware start")
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS shared_clock (id INTEGER PRIMARY KEY CHECK (id = 1), us INTEGER NOT NULL)")
            con.execute("INSERT OR IGNORE INTO shared_clock VALUES (1, ?)", (self._us(start),))

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0)
        con.execute("PRAGMA busy_timeout = 30000")
        return con

    @staticmethod
    def _us(instant: datetime) -> int:
        return (instant.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)

    def now(self) -> datetime:
        con = self._connect()
        try:
            row = con.execute("SELECT us FROM shared_clock WHERE id = 1").fetchone()
        finally:
            con.close()
        return _EPOCH + timedelta(microseconds=row[0])

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        step = delta // timedelta(microseconds=1)
        with self._connect() as con:
            con.execute("UPDATE shared_clock SET us = us + ? WHERE id = 1", (step,))
        return self.now()

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("SharedManualClock needs timezone-aware instants")
        with self._connect() as con:
            con.execute("UPDATE shared_clock SET us = ? WHERE id = 1", (self._us(instant),))
