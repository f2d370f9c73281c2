"""Time as an object, so the marketplace and the scheduler can be driven fast in tests.

Every datetime turnout handles is timezone-aware UTC. Code that needs "now" takes a
``Clock`` argument instead of calling ``datetime.now`` itself.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: simulated hours pass in microseconds.

    Thread-safe, because a test may advance it while a server thread reads it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new instant."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware instants")
        with self._lock:
            self._now = instant.astimezone(UTC)


def utcnow() -> datetime:
    """Aware UTC now, for the few places (log lines) that have no clock to hand."""
    return datetime.now(UTC)


# A manual clock several processes can share.
# A manual clock several processes can share, for rehearsals served by more than one
# process (gunicorn workers, the scheduler's job runner).
#
# ``turnout.clock.ManualClock`` lives in one process's memory: two server processes on one
# marketplace store would each have their own "now", and one would settle the other's
# future (expire HITs, auto-approve work) too early. ``SharedManualClock`` keeps the instant
# in a SQLite file instead (the marketplace store itself is fine), so every process that
# opens the same file reads and moves the same time. It satisfies ``turnout.clock.Clock``
# and has ``advance``/``set`` like ``ManualClock``, so the control API can move it.

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
