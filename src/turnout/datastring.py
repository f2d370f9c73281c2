"""Reading a participant's stored task data (psiTurk's ``datastring`` column).

One parse for every reader (the export, the psiTurk-compatible model helpers, the /sync
read-back, the dashboard's participant detail), so they agree on what "readable" means.
psiTurk databases hold anything a browser or a script once sent: invalid JSON, NaN,
numbers too large for a double, nesting too deep to parse. None of it may raise: such
data reads as None, and NaN and infinities read as null, as the browser's JSON.stringify
writes them (written back as ``Infinity`` they would be refused by JSON.parse).

What may be stored is checked here too (``parse_sync_body``): only data that every reader
can read back. Imports only the standard library and ``turnout.errors``, so the database
layer and the services can both use it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from turnout.errors import InvalidInput


def holds_overflowing_number(data: Any) -> bool:
    """Whether parsed JSON holds a number too large for a double (``1e999``, ``-1e400``),
    which Python reads as infinity and would write back as ``Infinity``: the browser's
    JSON.parse refuses that. A walk over the parsed data (no recursion: it may be deep)
    costs about a third of the parse; a parse_float hook on every parse would double it."""
    stack = [data]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and not math.isfinite(item):
            return True
    return False


# Where a JSON number can be too large for a double: an exponent of three or more digits
# (``1e309``; a negative one only makes it smaller), or a run of 200+ digits (with an
# exponent under 100 a mantissa needs more than 209 integer digits to reach 1.8e308).
# Bytes without either cannot hold one, so the walk of the parsed data is only paid when
# one appears (text that merely looks like it, "e123" inside a string, just costs the
# walk). Found with C-speed byte operations: every digit becomes "0", then substrings.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_OVERFLOW_SIGNS = (b"e000", b"e+000", b"E000", b"E+000", b"0" * 200)


def may_overflow(raw: bytes) -> bool:
    """Whether raw JSON bytes could hold a number too large for a double (cheap pre-check)."""
    zeroed = raw.translate(_DIGITS_TO_ZERO)
    return any(sign in zeroed for sign in _OVERFLOW_SIGNS)


def _finite_or_none(literal: str) -> float | None:
    value = float(literal)
    return value if math.isfinite(value) else None


def parse(datastring: str | None) -> Any:
    """The stored JSON value as the browser can read it back, or None when unreadable."""
    try:
        data = json.loads(datastring or "", parse_constant=lambda _name: None)
        if may_overflow((datastring or "").encode("utf-8", "surrogatepass")) and holds_overflowing_number(data):  # rare: only then pay for the per-number hook
            data = json.loads(datastring or "", parse_constant=lambda _name: None, parse_float=_finite_or_none)
        return data
    except (ValueError, RecursionError):
        return None


def parse_object(datastring: str | None) -> dict[str, Any] | None:
    """The stored task data as psiturk.js's object, or None when it is not one."""
    data = parse(datastring)
    return data if isinstance(data, dict) else None


def count_trials(data: dict[str, Any]) -> int:
    """How many trials psiturk.js has saved (its ``data`` list)."""
    trials = data.get("data")
    return len(trials) if isinstance(trials, list) else 0


def _refuse_constant(name: str) -> Any:
    raise InvalidInput(f"the request body holds {name}, which is not JSON (the browser's JSON.parse "
                       "cannot read it back); nothing was saved")


# A lone surrogate can only arrive as a \\uD800-\\uDFFF escape (raw ones are not valid UTF-8).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(text: str, data: Any) -> None:
    """Refuse text that is not Unicode (a lone UTF-16 surrogate): stored, it would break the
    export and every reader that writes UTF-8. Checked in full only when such an escape
    appears at all, so ordinary saves pay one scan of the text."""
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        raise InvalidInput("the request body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                           "escape), which is not text; nothing was saved") from None


def parse_sync_body(body: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a /sync PUT body; returns the text to store and the parsed object.

    Refused (400), so that what is stored can always be read back by the browser and
    exported: invalid JSON, NaN/Infinity, numbers too large for a double (``1e999``, which
    would be written back as Infinity), lone surrogates, and nesting too deep to parse.
    """
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the request body is not valid JSON; nothing was saved") from None
    except RecursionError:
        raise InvalidInput("the request body is nested too deeply to be read; nothing was saved") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object (psiturk.js's task data); nothing was saved")
    if may_overflow(body) and holds_overflowing_number(data):
        raise InvalidInput("the request body holds a number too large for the browser (it reads it as "
                           "Infinity, which cannot be saved back or exported); nothing was saved")
    _refuse_lone_surrogates(text, data)
    return text, data


def trial_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """trialdata rows: uniqueid, current_trial, dateTime, trialdata (as JSON text)."""
    for trial in data.get("data") or []:
        if isinstance(trial, dict):
            yield (uniqueid, trial.get("current_trial"), trial.get("dateTime"), json.dumps(trial.get("trialdata")))


def event_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """eventdata rows: uniqueid, eventtype, interval, value, timestamp."""
    for event in data.get("eventdata") or []:
        if isinstance(event, dict):
            yield (uniqueid, event.get("eventtype"), event.get("interval"), event.get("value"), event.get("timestamp"))


def question_rows(uniqueid: str, data: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """questiondata rows: uniqueid, question, answer."""
    questions = data.get("questiondata") or {}
    if isinstance(questions, dict):
        for question, answer in questions.items():
            yield (uniqueid, question, answer)


ROWS = {"trialdata": trial_rows, "eventdata": event_rows, "questiondata": question_rows}


def rows_to_csv(rows: Iterable[tuple[Any, ...]]) -> str:
    """Rows as psiTurk's CSV text (no header row)."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()
