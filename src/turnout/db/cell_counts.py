"""Participants per cell, kept by the database itself: ``turnout_cell_count``.

One row per (study table, codeversion, mode, status, cond, counterbalance) holds how many
participants are in that cell. Triggers on the participant table keep it (insert, a change
of any of those columns, delete), so every writer is counted: turnout's state machine,
custom.py code in psiTurk's ``db_session``, the dashboard and raw SQL alike (``TRUNCATE``
is the one statement that fires no trigger). Counterbalancing and the dashboard's
counts read these few rows instead of counting a table that grows with the study.

The key columns may be NULL (psiTurk databases hold anything), so the rows have a
surrogate key and no unique constraint: a cell is found with a NULL-safe comparison, and
two transactions that create the same cell at once leave two rows, which readers sum.
A decrement only takes a row that is above zero: a counter table emptied by hand (tests
delete every row of every table) then stays at zero rather than going negative.
A participant whose status goes down (3 -> 2) touches the lower status's cell first, as
one whose status goes up does, so two such changes cannot deadlock on the two rows.
Created and filled by migration 0015; ``create_all`` (tests, custom tooling) installs the
triggers too, through the metadata's ``after_create`` event.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Index, Integer, String, event, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

TABLE = "turnout_cell_count"
KEYS = ("codeversion", "mode", "status", "cond", "counterbalance")


def build_cell_count_model(Base: type[Any], participants: str) -> type[Any]:  # noqa: N803 - a class
    class CellCount(Base):
        """How many participants of one study are in one (codeversion, mode, status, cond, counterbalance)."""

        __tablename__ = TABLE
        __table_args__ = (Index("ix_turnout_cell_count_cell", "study", *KEYS),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        codeversion: Mapped[str | None] = mapped_column(String(128))
        mode: Mapped[str | None] = mapped_column(String(128))
        status: Mapped[int | None] = mapped_column(Integer)
        cond: Mapped[int | None] = mapped_column(Integer)
        counterbalance: Mapped[int | None] = mapped_column(Integer)
        n: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    def after_create(metadata: Any, connection: Connection, tables: Sequence[Any] = (), **_: Any) -> None:
        names = {t.name for t in tables}
        if participants in names:
            install(connection, participants)

    event.listen(Base.metadata, "after_create", after_create)
    return CellCount


def _trigger_names(table: str) -> dict[str, str]:
    stem = f"turnout_cc_{table}"[:56]
    return {"insert": f"{stem}_ins", "update": f"{stem}_upd", "delete": f"{stem}_del"}


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _sqlite_sql(table: str, qt: str) -> list[str]:
    names = _trigger_names(table)
    study = "'" + table.replace("'", "''") + "'"

    def match(row: str) -> str:
        return " AND ".join([f"study = {study}", *(f"{k} IS {row}.{k}" for k in KEYS)])

    cols = ", ".join(KEYS)

    def inc(row: str) -> str:
        return (f"INSERT INTO {TABLE} (study, {cols}, n) SELECT {study}, "
                + ", ".join(f"{row}.{k}" for k in KEYS)
                + f", 0 WHERE NOT EXISTS (SELECT 1 FROM {TABLE} WHERE {match(row)});\n"
                f"UPDATE {TABLE} SET n = n + 1 WHERE id = (SELECT id FROM {TABLE} WHERE {match(row)} LIMIT 1);\n")

    def dec(row: str) -> str:
        return (f"UPDATE {TABLE} SET n = n - 1 WHERE id = "
                f"(SELECT id FROM {TABLE} WHERE {match(row)} AND n > 0 LIMIT 1);\n")

    changed = " OR ".join(f"OLD.{k} IS NOT NEW.{k}" for k in KEYS)
    # SQLite takes one writer at a time, so the lock order of the update does not matter.
    return [
        f"CREATE TRIGGER {names['insert']} AFTER INSERT ON {qt} BEGIN\n{inc('NEW')}END",
        f"CREATE TRIGGER {names['update']} AFTER UPDATE OF {cols} ON {qt} WHEN {changed} BEGIN\n"
        f"{dec('OLD')}{inc('NEW')}END",
        f"CREATE TRIGGER {names['delete']} AFTER DELETE ON {qt} BEGIN\n{dec('OLD')}END",
    ]


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION turnout_cell_count_fn() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  inc_first boolean := false;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.codeversion IS NOT DISTINCT FROM OLD.codeversion AND NEW.mode IS NOT DISTINCT FROM OLD.mode
       AND NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.cond IS NOT DISTINCT FROM OLD.cond
       AND NEW.counterbalance IS NOT DISTINCT FROM OLD.counterbalance THEN
      RETURN NULL;
    END IF;
    -- touch the lower status's row first, whichever way the status moves (no deadlock)
    inc_first := coalesce(NEW.status < OLD.status, false);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND inc_first THEN
    PERFORM turnout_cell_count_add(TG_TABLE_NAME, NEW.codeversion, NEW.mode, NEW.status, NEW.cond,
                                   NEW.counterbalance, 1);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    PERFORM turnout_cell_count_add(TG_TABLE_NAME, OLD.codeversion, OLD.mode, OLD.status, OLD.cond,
                                   OLD.counterbalance, -1);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NOT inc_first THEN
    PERFORM turnout_cell_count_add(TG_TABLE_NAME, NEW.codeversion, NEW.mode, NEW.status, NEW.cond,
                                   NEW.counterbalance, 1);
  END IF;
  RETURN NULL;
END $fn$
"""

_PG_ADD = f"""
CREATE OR REPLACE FUNCTION turnout_cell_count_add(s text, cv text, m text, st integer, c integer,
                                                  cb integer, d integer) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE {TABLE} SET n = n + d WHERE id = (
    SELECT id FROM {TABLE} WHERE study = s AND codeversion IS NOT DISTINCT FROM cv
      AND mode IS NOT DISTINCT FROM m AND status IS NOT DISTINCT FROM st
      AND cond IS NOT DISTINCT FROM c AND counterbalance IS NOT DISTINCT FROM cb
      AND (d > 0 OR n > 0) LIMIT 1);
  IF NOT FOUND AND d > 0 THEN
    INSERT INTO {TABLE} (study, codeversion, mode, status, cond, counterbalance, n)
      VALUES (s, cv, m, st, c, cb, d);
  END IF;
END $fn$
"""


def _pg_sql(table: str, qt: str) -> list[str]:
    names = _trigger_names(table)
    cols = ", ".join(KEYS)
    return [
        _PG_ADD, _PG_FUNCTION,
        f"CREATE TRIGGER {names['insert']} AFTER INSERT ON {qt} FOR EACH ROW EXECUTE FUNCTION turnout_cell_count_fn()",
        f"CREATE TRIGGER {names['update']} AFTER UPDATE OF {cols} ON {qt} FOR EACH ROW "
        "EXECUTE FUNCTION turnout_cell_count_fn()",
        f"CREATE TRIGGER {names['delete']} AFTER DELETE ON {qt} FOR EACH ROW EXECUTE FUNCTION turnout_cell_count_fn()",
    ]


def _mysql_sql(table: str, qt: str) -> list[str]:
    names = _trigger_names(table)
    study = "'" + table.replace("'", "''") + "'"
    cols = ", ".join(KEYS)

    def match(row: str) -> str:
        return " AND ".join([f"study = {study}", *(f"{k} <=> {row}.{k}" for k in KEYS)])

    def inc(row: str) -> str:
        return (f"UPDATE {TABLE} SET n = n + 1 WHERE {match(row)} LIMIT 1;\n"
                f"IF ROW_COUNT() = 0 THEN INSERT INTO {TABLE} (study, {cols}, n) VALUES ({study}, "
                + ", ".join(f"{row}.{k}" for k in KEYS) + ", 1); END IF;\n")

    def dec(row: str) -> str:
        return f"UPDATE {TABLE} SET n = n - 1 WHERE {match(row)} AND n > 0 LIMIT 1;\n"

    same = " AND ".join(f"OLD.{k} <=> NEW.{k}" for k in KEYS)
    return [
        f"CREATE TRIGGER {names['insert']} AFTER INSERT ON {qt} FOR EACH ROW BEGIN\n{inc('NEW')}END",
        f"CREATE TRIGGER {names['update']} AFTER UPDATE ON {qt} FOR EACH ROW BEGIN\n"
        f"IF NOT ({same}) THEN\n"
        f"IF COALESCE(NEW.status < OLD.status, 0) THEN\n{inc('NEW')}{dec('OLD')}"
        f"ELSE\n{dec('OLD')}{inc('NEW')}END IF;\nEND IF;\nEND",
        f"CREATE TRIGGER {names['delete']} AFTER DELETE ON {qt} FOR EACH ROW BEGIN\n{dec('OLD')}END",
    ]


def uninstall(connection: Connection, table: str) -> None:
    """Drop the triggers on ``table`` (the counter rows stay)."""
    dialect = connection.dialect.name
    for name in _trigger_names(table).values():
        if dialect == "postgresql":
            connection.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {_q(connection, table)}"))
        else:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def install(connection: Connection, table: str) -> None:
    """(Re)create the triggers on ``table``; the counter table must exist or be created next."""
    uninstall(connection, table)
    dialect = connection.dialect.name
    qt = _q(connection, table)
    if dialect == "sqlite":
        statements = _sqlite_sql(table, qt)
    elif dialect == "postgresql":
        statements = _pg_sql(table, qt)
    else:
        statements = _mysql_sql(table, qt)
    for statement in statements:
        connection.exec_driver_sql(statement)
    _known.pop(connection.engine, None)


def backfill(connection: Connection, table: str) -> None:
    """Replace ``table``'s counter rows by a full count (run with the triggers in place)."""
    cols = ", ".join(KEYS)
    connection.execute(text(f"DELETE FROM {TABLE} WHERE study = :s"), {"s": table})
    connection.execute(text(f"INSERT INTO {TABLE} (study, {cols}, n) SELECT :s, {cols}, COUNT(*) "
                            f"FROM {_q(connection, table)} GROUP BY {cols}"), {"s": table})


_known: weakref.WeakKeyDictionary[Engine, dict[str, bool]] = weakref.WeakKeyDictionary()


def available(session: Session, table: str) -> bool:
    """Whether ``table`` has its triggers (migration 0015 or ``create_all``); cached per engine.

    A database not yet upgraded (or a table made some other way) is counted the old way."""
    engine = session.get_bind().engine
    cache = _known.setdefault(engine, {})
    if table not in cache:
        name = _trigger_names(table)["insert"]
        dialect = engine.dialect.name
        if dialect == "sqlite":
            found = session.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                    {"n": name}).first()
        elif dialect == "postgresql":
            found = session.execute(text("SELECT 1 FROM pg_trigger WHERE tgname = :n AND NOT tgisinternal "
                                         "AND tgrelid = to_regclass(:t)"), {"n": name, "t": table}).first()
        else:
            found = session.execute(text("SELECT 1 FROM information_schema.triggers WHERE trigger_name = :n "
                                         "AND trigger_schema = DATABASE()"), {"n": name}).first()
        cache[table] = found is not None
    return cache[table]


def forget(engine: Engine) -> None:
    """Drop what ``available`` cached for ``engine`` (after a downgrade, say)."""
    _known.pop(engine, None)


Cell = tuple[Any, Any, Any, Any, Any]  # codeversion, mode, status, cond, counterbalance


def read(session: Session, CellCount: Any, table: str, **equal: Any) -> dict[Cell, int]:  # noqa: N803
    """The non-empty cells of ``table`` (optionally only where each ``equal`` column matches)."""
    C = CellCount
    stmt = (select(*(getattr(C, k) for k in KEYS), func.sum(C.n)).where(C.study == table,
                                                                        *(getattr(C, k) == v for k, v in equal.items()))
            .group_by(*(getattr(C, k) for k in KEYS)))
    return {tuple(r[:5]): int(r[5]) for r in session.execute(stmt) if r[5]}


def recount(session: Session, Participant: Any) -> dict[Cell, int]:  # noqa: N803
    """The same cells counted from the participant table itself (tests, ``turnout db check``)."""
    P = Participant
    columns = [getattr(P, k) for k in KEYS]
    return {tuple(r[:5]): int(r[5]) for r in session.execute(select(*columns, func.count()).group_by(*columns))}


def matching(cells: dict[Cell, int], **allowed: Iterable[Any] | None) -> dict[Cell, int]:
    """The cells whose columns are among ``allowed`` (a column given None is not filtered)."""
    sets = {KEYS.index(k): set(v) for k, v in allowed.items() if v is not None}
    return {cell: n for cell, n in cells.items() if all(cell[i] in values for i, values in sets.items())}
