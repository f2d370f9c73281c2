"""Data export in psiTurk's CSV layout, streamed so memory stays flat in the participant count.

trialdata.csv:    uniqueid, current_trial, dateTime, trialdata (JSON)
eventdata.csv:    uniqueid, eventtype, interval, value, timestamp
questiondata.csv: uniqueid, question, answer
(no header rows, as psiTurk's download_datafiles writes them)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import inspect, select

from turnout.db.engine import Database
from turnout.errors import NotFound

KINDS = ("trialdata", "eventdata", "questiondata")


def trial_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for trial in data.get("data") or []:
        if isinstance(trial, dict):
            yield (uniqueid, trial.get("current_trial"), trial.get("dateTime"), json.dumps(trial.get("trialdata")))


def event_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for event in data.get("eventdata") or []:
        if isinstance(event, dict):
            yield (uniqueid, event.get("eventtype"), event.get("interval"), event.get("value"), event.get("timestamp"))


def question_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    questions = data.get("questiondata") or {}
    if isinstance(questions, dict):
        for question, answer in questions.items():
            yield (uniqueid, question, answer)


ROWS = {"trialdata": trial_rows, "eventdata": event_rows, "questiondata": question_rows}


def rows_to_csv(rows: Iterable[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def iter_datastrings(db: Database, *, codeversion: str | None = None, mode: str | None = None,
                     batch: int = 200) -> Iterator[tuple[str, str | None, str | None, str | None]]:
    """(uniqueid, codeversion, mode, datastring) in primary-key order, a page at a time.

    Keyset pages keep each query small and never hold more than ``batch`` blobs in memory.
    """
    P = db.models.Participant
    last = ""
    while True:
        stmt = select(P.uniqueid, P.codeversion, P.mode, P.datastring).where(P.uniqueid > last)
        if codeversion is not None:
            stmt = stmt.where(P.codeversion == codeversion)
        if mode is not None:
            stmt = stmt.where(P.mode == mode)
        with db.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(P.uniqueid).limit(batch)).all()
        if not rows:
            return
        yield from (tuple(r) for r in rows)  # type: ignore[misc]
        last = rows[-1][0]


def _parsed(datastring: str | None) -> dict[str, Any] | None:
    try:
        data = json.loads(datastring or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def export(db: Database, out_dir: Path, *, fmt: str = "csv", codeversion: str | None = None,
           mode: str | None = None) -> dict[str, int]:
    """Write the three files into ``out_dir``; returns rows written per file.

    ``fmt='json'`` writes JSON Lines (one object per row, keys named after psiTurk's columns).
    """
    table = db.models.Participant.__tablename__
    if not inspect(db.engine).has_table(table):
        raise NotFound(f"the database has no participant table {table!r}: check database_url and "
                       "table_name, or run `turnout db upgrade` to create it")
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "csv" if fmt == "csv" else "jsonl"
    columns = {"trialdata": ("uniqueid", "current_trial", "dateTime", "trialdata"),
               "eventdata": ("uniqueid", "eventtype", "interval", "value", "timestamp"),
               "questiondata": ("uniqueid", "question", "answer")}
    counts = dict.fromkeys(KINDS, 0)
    with ExitStack() as stack:
        handles: dict[str, TextIO] = {
            k: stack.enter_context(open(out_dir / f"{k}.{suffix}", "w", newline="", encoding="utf-8"))
            for k in KINDS}
        writers = {k: csv.writer(h) for k, h in handles.items()}
        for uniqueid, _cv, _mode, datastring in iter_datastrings(db, codeversion=codeversion, mode=mode):
            data = _parsed(datastring)
            if data is None:
                continue
            for kind in KINDS:
                for row in ROWS[kind](uniqueid, data):
                    counts[kind] += 1
                    if fmt == "csv":
                        writers[kind].writerow(row)
                    else:
                        record = dict(zip(columns[kind], row, strict=True))
                        if kind == "trialdata":
                            record["trialdata"] = json.loads(record["trialdata"])
                        handles[kind].write(json.dumps(record) + "\n")
    return counts
