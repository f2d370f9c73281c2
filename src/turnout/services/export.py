"""Data export in psiTurk's CSV layout, streamed so memory stays flat in the participant count.

trialdata.csv:    uniqueid, current_trial, dateTime, trialdata (JSON)
eventdata.csv:    uniqueid, eventtype, interval, value, timestamp
questiondata.csv: uniqueid, question, answer
(no header rows, as psiTurk's download_datafiles writes them)

psiTurk databases hold anything a browser or a script once sent: invalid JSON, NaN,
lone UTF-16 surrogates, nesting too deep to serialise. The export never dies on such a
row: a participant whose data cannot be read is left out and named in the result, NaN
and infinities become null (as the browser's JSON.stringify writes them), and text that
is not Unicode is written with backslash escapes. Each file is written under a temporary
name and renamed into place only when all three are complete, so an export that fails
leaves no partial files (and earlier exports in the folder untouched).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import and_, func, inspect, not_, or_, select

from turnout.datastring import (
    ROWS,
    event_rows,
    parse_object,
    question_rows,
    rows_to_csv,
    trial_rows,
)
from turnout.db.engine import Database
from turnout.errors import NotFound

KINDS = ("trialdata", "eventdata", "questiondata")
# The row builders live with the parse; re-exported for callers of this module.
__all__ = ["KINDS", "ROWS", "ExportResult", "event_rows", "excluded", "export", "iter_datastrings", "not_debug",
           "question_rows", "rows_to_csv", "trial_rows"]


def not_debug(P: Any) -> Any:
    """Rows that are not debug runs: turnout and psiTurk decide "debug" by the hitId prefix,
    and ``turnout debug`` links also store mode ``debug``."""
    return not_(or_(func.coalesce(P.mode, "") == "debug", P.hitid.like("debug%")))


def excluded(db: Database, P: Any) -> Any | None:
    """Rows excluded by reconciliation (``turnout reconcile fix ... exclude``), or None for
    a database from before that table (a psiTurk one not yet upgraded)."""
    X = db.models.Exclusion
    if not inspect(db.engine).has_table(X.__tablename__):
        return None
    return P.uniqueid.in_(select(X.uniqueid).where(X.study == P.__tablename__))


def iter_datastrings(db: Database, *, codeversion: str | None = None, mode: str | None = None,
                     batch: int = 200, include_debug: bool = True,
                     include_excluded: bool = True) -> Iterator[tuple[str, str | None, str | None, str | None]]:
    """(uniqueid, codeversion, mode, datastring) in primary-key order, a page at a time.

    Keyset pages keep each query small and never hold more than ``batch`` blobs in memory.
    """
    P = db.models.Participant
    left_out = None if include_excluded else excluded(db, P)
    last = ""
    while True:
        stmt = select(P.uniqueid, P.codeversion, P.mode, P.datastring).where(P.uniqueid > last)
        if codeversion is not None:
            stmt = stmt.where(P.codeversion == codeversion)
        if mode is not None:
            stmt = stmt.where(P.mode == mode)
        if not include_debug:
            stmt = stmt.where(not_debug(P))
        if left_out is not None:
            stmt = stmt.where(not_(left_out))
        with db.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(P.uniqueid).limit(batch)).all()
        if not rows:
            return
        yield from (tuple(r) for r in rows)  # type: ignore[misc]
        last = rows[-1][0]


COLUMNS = {"trialdata": ("uniqueid", "current_trial", "dateTime", "trialdata"),
           "eventdata": ("uniqueid", "eventtype", "interval", "value", "timestamp"),
           "questiondata": ("uniqueid", "question", "answer")}


def participant_rows(db: Database, uniqueid: str, kind: str) -> list[tuple[Any, ...]]:
    """One participant's ``kind`` rows (trialdata, eventdata, questiondata) in the export's
    layout: the dashboard's per-participant downloads. Unreadable data gives no rows."""
    if kind not in ROWS:
        raise NotFound(f"no data kind {kind!r}; use one of {', '.join(KINDS)}")
    P = db.models.Participant
    with db.begin() as session:
        found = session.execute(select(P.datastring).where(P.uniqueid == uniqueid)).first()
    if found is None:
        raise NotFound(f"no participant {uniqueid!r}")
    return list(ROWS[kind](uniqueid, parse_object(found[0]) or {}))


@dataclass
class ExportResult:
    """What an export wrote, and what it left out and why."""

    counts: dict[str, int]
    files: dict[str, Path]
    unreadable: list[str] = field(default_factory=list)  # uniqueids whose stored data is not readable
    debug_included: bool = False
    debug_left_out: int = 0
    excluded_included: bool = False
    excluded_left_out: int = 0


def _lines(kind: str, uniqueid: str, data: dict[str, Any], fmt: str) -> list[Any]:
    """One participant's rows of ``kind``: CSV rows, or JSON Lines text. Raises on data that
    cannot be written (too deeply nested), so the caller can leave the participant out whole."""
    rows = list(ROWS[kind](uniqueid, data))
    if fmt == "csv":
        return rows
    lines = []
    for row in rows:
        record = dict(zip(COLUMNS[kind], row, strict=True))
        if kind == "trialdata":
            record["trialdata"] = json.loads(record["trialdata"])
        lines.append(json.dumps(record) + "\n")
    return lines


def _count_left_out(db: Database, codeversion: str | None, mode: str | None, condition: Any) -> int:
    P = db.models.Participant
    stmt = select(func.count()).select_from(P).where(condition, P.datastring.is_not(None))
    if codeversion is not None:
        stmt = stmt.where(P.codeversion == codeversion)
    if mode is not None:
        stmt = stmt.where(P.mode == mode)
    with db.engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def export(db: Database, out_dir: Path, *, fmt: str = "csv", codeversion: str | None = None,
           mode: str | None = None, include_debug: bool = False, include_excluded: bool = False) -> ExportResult:
    """Write the three files into ``out_dir``; returns rows written per file and what was left out.

    ``fmt='json'`` writes JSON Lines (one object per row, keys named after psiTurk's columns).
    Debug runs are left out unless ``include_debug`` (or ``mode='debug'``) asks for them:
    psiTurk's export mixed them into the real data. Rows excluded by reconciliation are left
    out unless ``include_excluded``.
    """
    table = db.models.Participant.__tablename__
    if not inspect(db.engine).has_table(table):
        raise NotFound(f"the database has no participant table {table!r}: check database_url and "
                       "table_name, or run `turnout db upgrade` to create it")
    include_debug = include_debug or mode == "debug"
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "csv" if fmt == "csv" else "jsonl"
    files = {k: out_dir / f"{k}.{suffix}" for k in KINDS}
    temps = {k: out_dir / f".{k}.{suffix}.{os.getpid()}.tmp" for k in KINDS}
    result = ExportResult(counts=dict.fromkeys(KINDS, 0), files=files, debug_included=include_debug,
                          excluded_included=include_excluded)
    try:
        with ExitStack() as stack:
            # backslashreplace: a lone surrogate already stored is written as \udXXX, not a crash.
            handles: dict[str, TextIO] = {
                k: stack.enter_context(open(temps[k], "w", newline="", encoding="utf-8",
                                            errors="backslashreplace"))
                for k in KINDS}
            writers = {k: csv.writer(h) for k, h in handles.items()}
            for uniqueid, _cv, _mode, datastring in iter_datastrings(db, codeversion=codeversion, mode=mode,
                                                                     include_debug=include_debug,
                                                                     include_excluded=include_excluded):
                data = parse_object(datastring)
                if data is None:
                    if datastring:
                        result.unreadable.append(uniqueid)
                    continue
                try:
                    per_kind = {kind: _lines(kind, uniqueid, data, fmt) for kind in KINDS}
                except (ValueError, TypeError, RecursionError):
                    result.unreadable.append(uniqueid)
                    continue
                for kind, lines in per_kind.items():
                    result.counts[kind] += len(lines)
                    if fmt == "csv":
                        writers[kind].writerows(lines)
                    else:
                        handles[kind].writelines(lines)
        for kind in KINDS:
            os.replace(temps[kind], files[kind])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    P = db.models.Participant
    if not include_debug:
        result.debug_left_out = _count_left_out(db, codeversion, mode, not_(not_debug(P)))
    left_out = None if include_excluded else excluded(db, P)
    if left_out is not None:
        condition = left_out if include_debug else and_(left_out, not_debug(P))
        result.excluded_left_out = _count_left_out(db, codeversion, mode, condition)
    return result
