"""The participants table: filters, facets, groups, sorting and pages, all in SQL.

psiTurk's dashboard fetched every participant and counted in the browser. Here a
``TableQuery`` (parsed from the URL, so a view is bookmarkable) becomes a handful of
indexed queries: one page of rows, one count, one GROUP BY per facet and one for the
groups. The page costs what the page (and the filtered count) costs, not the table. The
same query streams the CSV twin, chunk by chunk, so an export's memory stays flat.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, union

from turnout.config import COMPLETED_STATUSES
from turnout.datastring import parse_object
from turnout.db import cell_counts as counters
from turnout.db.engine import Database
from turnout.errors import InvalidInput, NotFound

STATUS_NAMES = {0: "Not accepted", 1: "Allocated", 2: "Started", 3: "Completed", 4: "Submitted",
                5: "Approved", 6: "Quit early", 7: "Bonused"}
_STATUS_BY_NAME = {name.lower().replace(" ", ""): code for code, name in STATUS_NAMES.items()}
_STATUS_BY_NAME.update({"credited": 5, "quitearly": 6, "notaccepted": 0})
# psiTurk's column names, in its order (datastring is left out of listings).
COLUMNS = ("uniqueid", "assignmentid", "workerid", "hitid", "ipaddress", "browser", "platform", "language",
           "cond", "counterbalance", "codeversion", "beginhit", "beginexp", "endhit", "bonus", "status", "mode")
FACETS = ("mode", "cond", "codeversion", "status")
GROUPABLE = ("cond", "mode", "status", "codeversion")
SORTABLE = COLUMNS
DEFAULT_SORT = "-beginhit"
MAX_PER_PAGE = 500
CSV_CHUNK = 1000


def status_name(code: int | None) -> str:
    if code is None:
        return "Unknown"
    return STATUS_NAMES.get(code, f"Unknown ({code})")


def _ints(values: Sequence[str], what: str) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(value))
        except ValueError:
            raise InvalidInput(f"{what} must be a whole number, got {value!r}") from None
    return out


def _statuses(values: Sequence[str]) -> list[int]:
    out = []
    for value in values:
        key = value.strip().lower().replace(" ", "").replace("_", "")
        if key.lstrip("-").isdigit():
            out.append(int(key))
        elif key in _STATUS_BY_NAME:
            out.append(_STATUS_BY_NAME[key])
        else:
            names = ", ".join(STATUS_NAMES.values())
            raise InvalidInput(f"unknown status {value!r}; use a number 0-7 or one of {names}")
    return out


def _values(args: Mapping[str, Any], key: str) -> list[str]:
    """Repeated (``?cond=0&cond=1``) or comma-separated values; blanks ignored."""
    getlist = getattr(args, "getlist", None)
    raw = getlist(key) if getlist else ([args[key]] if key in args else [])
    return [v.strip() for item in raw for v in str(item).split(",") if v.strip()]


@dataclass(frozen=True)
class TableQuery:
    """One view of the table, as the URL states it."""

    modes: tuple[str, ...] = ()
    conds: tuple[int, ...] = ()
    codeversion: str | None = None  # None = every codeversion
    complete: bool = False
    statuses: tuple[int, ...] = ()
    q: str = ""
    sort: str = DEFAULT_SORT
    group_by: tuple[str, ...] = ()
    page: int = 1
    per_page: int = 50
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, Any], current_codeversion: str) -> TableQuery:
        """Parse the query string; ``codeversion`` absent means the current one, ``*`` all."""
        codeversion_values = _values(args, "codeversion")
        if not codeversion_values:
            codeversion: str | None = current_codeversion
        elif codeversion_values == ["*"]:
            codeversion = None
        else:
            codeversion = codeversion_values[0]
        complete_text = str(args.get("complete", "") or "").strip().lower()
        if complete_text not in ("", "true", "false", "1", "0", "yes", "no", "on", "off"):
            raise InvalidInput(f"complete must be true or false, got {complete_text!r}")
        sort = str(args.get("sort") or DEFAULT_SORT).strip()
        if sort.lstrip("-") not in SORTABLE:
            raise InvalidInput(f"cannot sort by {sort!r}; use one of {', '.join(SORTABLE)} (prefix - for descending)")
        group_by = tuple(_values(args, "group_by"))
        for g in group_by:
            if g not in GROUPABLE:
                raise InvalidInput(f"cannot group by {g!r}; use {', '.join(GROUPABLE)}")
        (page,) = _ints([str(args.get("page") or 1)], "page")
        (per_page,) = _ints([str(args.get("per_page") or 50)], "per_page")
        if page < 1:
            raise InvalidInput("page must be 1 or more")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise InvalidInput(f"per_page must be from 1 to {MAX_PER_PAGE}")
        q = str(args.get("q") or "").strip()
        if len(q) > 128:
            raise InvalidInput("q (a worker, assignment or HIT id) is at most 128 characters")
        return cls(modes=tuple(_values(args, "mode")), conds=tuple(_ints(_values(args, "cond"), "cond")),
                   codeversion=codeversion, complete=complete_text in ("true", "1", "yes", "on"),
                   statuses=tuple(_statuses(_values(args, "status"))), q=q, sort=sort, group_by=group_by,
                   page=page, per_page=per_page)

    def to_args(self, current_codeversion: str, **changes: Any) -> dict[str, Any]:
        """The query string for this view (with ``changes``), defaults left out: for links."""
        values = {"mode": ",".join(self.modes), "cond": ",".join(map(str, self.conds)),
                  "codeversion": "*" if self.codeversion is None else
                  ("" if self.codeversion == current_codeversion else self.codeversion),
                  "complete": "true" if self.complete else "", "status": ",".join(map(str, self.statuses)),
                  "q": self.q, "sort": "" if self.sort == DEFAULT_SORT else self.sort,
                  "group_by": ",".join(self.group_by), "page": "" if self.page == 1 else str(self.page),
                  "per_page": "" if self.per_page == 50 else str(self.per_page)}
        values.update({k: ("" if v is None else str(v)) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v != ""}


def _conditions(P: Any, tq: TableQuery, *, skip: str | None = None) -> list[Any]:
    where: list[Any] = []
    if tq.codeversion is not None and skip != "codeversion":
        where.append(P.codeversion == tq.codeversion)
    if tq.modes and skip != "mode":
        where.append(P.mode.in_(tq.modes))
    if tq.conds and skip != "cond":
        where.append(P.cond.in_(tq.conds))
    if skip != "status":
        if tq.complete:
            where.append(P.status.in_(COMPLETED_STATUSES))
        if tq.statuses:
            where.append(P.status.in_(tq.statuses))
    if tq.q:
        # A prefix as a range (q <= id < q + U+FFFF), one indexed lookup per id column, joined
        # by UNION: every backend answers each from its index (LIKE 'q%' is a full scan on
        # SQLite, and an OR over three columns next to the other filters often is too).
        upper = tq.q + "\uffff"
        matches = union(*(select(P.uniqueid).where(c >= tq.q, c < upper)
                          for c in (P.workerid, P.assignmentid, P.hitid)),
                        select(P.uniqueid).where(P.uniqueid == tq.q))
        where.append(P.uniqueid.in_(select(matches.subquery().c[0])))
    return where


def where(P: Any, tq: TableQuery) -> list[Any]:
    """The filter's conditions, for another query over the same rows (a batch action on them)."""
    return _conditions(P, tq)


def _filtered(P: Any, tq: TableQuery, statement: Select[Any], *, skip: str | None = None) -> Select[Any]:
    where = _conditions(P, tq, skip=skip)
    return statement.where(and_(*where)) if where else statement


def _ordered(P: Any, tq: TableQuery, statement: Select[Any]) -> Select[Any]:
    column = getattr(P, tq.sort.lstrip("-"))
    key = column.desc() if tq.sort.startswith("-") else column.asc()
    tie = P.uniqueid.desc() if tq.sort.startswith("-") else P.uniqueid.asc()
    return statement.order_by(key, tie)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def row_dict(p: Any) -> dict[str, Any]:
    out = {c: _iso(getattr(p, c)) for c in COLUMNS}
    out["status_name"] = status_name(p.status)
    return out


def _column_objects(P: Any) -> list[Any]:
    return [getattr(P, c) for c in COLUMNS]


def _null_key(nulls_first: bool, value: Any) -> tuple[int, Any]:
    """Sort key for one column as the database orders it ascending (NULLs first on SQLite
    and MariaDB, last on PostgreSQL)."""
    if value is None:
        return (0 if nulls_first else 2, 0)
    return (1, value)


def _cells_matching(cells: dict[Any, int], tq: TableQuery, skip: str | None = None) -> dict[Any, int]:
    """``_conditions`` applied to the counter cells (``tq.q`` needs the table itself)."""
    statuses: set[int] | None = None
    if skip != "status":
        if tq.complete:
            statuses = set(COMPLETED_STATUSES)
        if tq.statuses:
            statuses = set(tq.statuses) if statuses is None else statuses & set(tq.statuses)
    return counters.matching(
        cells,
        codeversion=None if tq.codeversion is None or skip == "codeversion" else [tq.codeversion],
        mode=tq.modes if tq.modes and skip != "mode" else None,
        cond=tq.conds if tq.conds and skip != "cond" else None,
        status=statuses)


def _summed(cells: dict[Any, int], names: Sequence[str]) -> dict[tuple[Any, ...], int]:
    at = [counters.KEYS.index(n) for n in names]
    out: dict[tuple[Any, ...], int] = {}
    for cell, n in cells.items():
        key = tuple(cell[i] for i in at)
        out[key] = out.get(key, 0) + n
    return out


def _counts_from_cells(db: Database, session: Any, tq: TableQuery) -> dict[str, Any] | None:
    """Total, facets and groups from ``turnout_cell_count`` (a few rows, whatever the size of
    the table), or None where the counters cannot answer (a search, or no counters)."""
    if tq.q or not counters.available(session, db.tables.participants):
        return None
    cells = counters.read(session, db.models.CellCount, db.tables.participants)
    nulls_first = db.backend != "postgresql"
    out: dict[str, Any] = {"total": sum(_cells_matching(cells, tq).values()), "facets": {}}
    for name in FACETS:
        summed = _summed(_cells_matching(cells, tq, skip=name), [name])
        ordered = sorted(summed.items(), key=lambda kv: (-kv[1], _null_key(nulls_first, kv[0][0])))[:100]
        out["facets"][name] = [{"value": v, "count": n, **({"label": status_name(v)} if name == "status" else {})}
                               for (v,), n in ordered]
    if tq.group_by:
        summed = _summed(_cells_matching(cells, tq), tq.group_by)
        ordered = sorted(summed.items(), key=lambda kv: [_null_key(nulls_first, v) for v in kv[0]])[:1000]
        out["groups"] = [{**dict(zip(tq.group_by, key, strict=True)), "count": n,
                          **({"status_name": status_name(key[tq.group_by.index("status")])}
                             if "status" in tq.group_by else {})} for key, n in ordered]
    return out


def query(db: Database, tq: TableQuery) -> dict[str, Any]:
    """One page of the table, its total, the facets and (with ``group_by``) the groups.

    The counts come from the per-cell counters (turnout.db.cell_counts) unless the view
    searches by id; the page of rows walks an index either way."""
    P = db.models.Participant
    with db.begin() as session:
        counted = _counts_from_cells(db, session, tq)
        if counted is not None:
            rows = session.execute(_ordered(P, tq, _filtered(P, tq, select(*_column_objects(P))))
                                   .limit(tq.per_page).offset((tq.page - 1) * tq.per_page)).all()
            return {"total": counted["total"], "page": tq.page, "per_page": tq.per_page,
                    "rows": [_row_from_tuple(r) for r in rows], "facets": counted["facets"],
                    **({"groups": counted["groups"]} if tq.group_by else {})}
        total = session.scalar(_filtered(P, tq, select(func.count()).select_from(P)))
        rows = session.execute(_ordered(P, tq, _filtered(P, tq, select(*_column_objects(P))))
                               .limit(tq.per_page).offset((tq.page - 1) * tq.per_page)).all()
        facets: dict[str, list[dict[str, Any]]] = {}
        for name in FACETS:
            column = getattr(P, name)
            counted = session.execute(_filtered(P, tq, select(column, func.count()).select_from(P), skip=name)
                                      .group_by(column).order_by(func.count().desc(), column).limit(100)).all()
            facets[name] = [{"value": v, "count": int(n), **({"label": status_name(v)} if name == "status" else {})}
                            for v, n in counted]
        result: dict[str, Any] = {"total": int(total or 0), "page": tq.page, "per_page": tq.per_page,
                                  "rows": [_row_from_tuple(r) for r in rows], "facets": facets}
        if tq.group_by:
            columns = [getattr(P, g) for g in tq.group_by]
            grouped = session.execute(_filtered(P, tq, select(*columns, func.count()).select_from(P))
                                      .group_by(*columns).order_by(*columns).limit(1000)).all()
            result["groups"] = [{**{g: r[i] for i, g in enumerate(tq.group_by)}, "count": int(r[-1]),
                                 **({"status_name": status_name(r[tq.group_by.index("status")])}
                                    if "status" in tq.group_by else {})}
                                for r in grouped]
    return result


def _row_from_tuple(r: Any) -> dict[str, Any]:
    out = {c: _iso(r[i]) for i, c in enumerate(COLUMNS)}
    out["status_name"] = status_name(out["status"])
    return out


def stream_csv(db: Database, tq: TableQuery) -> Iterator[str]:
    """Every row of the view (all pages, not just one) as CSV, streamed in chunks.

    Chunks are taken by keyset on the primary key (``uniqueid > last``), so each costs the
    same however far into the table it is, and memory stays flat whatever the size. The
    rows are those of the view; their order is by uniqueid (a sort column's NULLs order
    differently on each database, which would make keyset paging on it fragile).
    """
    P = db.models.Participant
    header = [*COLUMNS, "status_name"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    yield buffer.getvalue()
    last: str | None = None
    while True:
        statement = _filtered(P, tq, select(*_column_objects(P))).order_by(P.uniqueid)
        if last is not None:
            statement = statement.where(P.uniqueid > last)
        with db.begin() as session:
            chunk = session.execute(statement.limit(CSV_CHUNK)).all()
        if not chunk:
            return
        buffer.seek(0)
        buffer.truncate()
        status_at = COLUMNS.index("status")
        writer.writerows([*("" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in r),
                          status_name(r[status_at])] for r in chunk)
        yield buffer.getvalue()
        last = chunk[-1][0]
        if len(chunk) < CSV_CHUNK:
            return


def participant_detail(db: Database, uniqueid: str) -> dict[str, Any]:
    """One participant: every column, the parsed data, status history and ledger entries."""
    P, T, L = db.models.Participant, db.models.StatusTransition, db.models.LedgerEntry
    with db.begin() as session:
        p = session.get(P, uniqueid)
        if p is None:
            raise NotFound(f"no participant {uniqueid!r}")
        raw = p.datastring
        history = session.execute(select(T.old_status, T.new_status, T.reason, T.at, T.detail).where(
            T.uniqueid == uniqueid, T.table_name == db.tables.participants).order_by(T.id)).all()
        ledger = list(session.scalars(select(L).where(L.study == db.tables.participants,
                                                      L.assignment_id == p.assignmentid).order_by(L.id)))
        out = row_dict(p)
    data = parse_object(raw) or {}
    out["data"] = {"trialdata": [t.get("trialdata") if isinstance(t, dict) else t for t in data.get("data", [])
                                 if isinstance(data.get("data"), list)],
                   "questiondata": data.get("questiondata") or {}, "eventdata": data.get("eventdata") or []}
    out["history"] = [{"from": h[0], "from_name": status_name(h[0]) if h[0] is not None else None, "to": h[1],
                       "to_name": status_name(h[1]), "reason": h[2], "at": _iso(h[3]), "detail": h[4]}
                      for h in history]
    out["ledger"] = [{"id": e.id, "mode": e.mode, "kind": e.kind, "amount": e.amount, "state": e.state,
                      "attempts": e.attempts, "error": e.error_message, "created_at": _iso(e.created_at),
                      "finished_at": _iso(e.finished_at), "actor": e.actor} for e in ledger]
    return out
