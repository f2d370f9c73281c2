"""The audit trail as the Activity page and its JSON/CSV twins read it.

``services.audit`` writes the events (who, when, what, on which marketplace, outcome);
this reads them filtered, newest first, a page at a time by keyset on the id, without
needing a marketplace client (so it works in a mode with no credentials too).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from turnout.db.engine import Database
from turnout.errors import InvalidInput

FIELDS = ("id", "at", "actor", "action", "mode", "marketplace", "target", "outcome", "ledger_id", "detail")


@dataclass(frozen=True)
class ActivityQuery:
    action: str = ""
    mode: str = ""
    outcome: str = ""
    actor: str = ""
    target: str = ""
    before_id: int | None = None
    limit: int = 100

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> ActivityQuery:
        def text(key: str) -> str:
            value = str(args.get(key) or "").strip()
            if len(value) > 128:
                raise InvalidInput(f"{key} is at most 128 characters")
            return value

        try:
            before = int(args["before_id"]) if args.get("before_id") else None
            limit = int(args.get("limit") or 100)
        except ValueError:
            raise InvalidInput("before_id and limit must be whole numbers") from None
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be from 1 to 1000")
        return cls(action=text("action"), mode=text("mode"), outcome=text("outcome"), actor=text("actor"),
                   target=text("target"), before_id=before, limit=limit)

    def args(self) -> dict[str, str]:
        return {k: v for k, v in (("action", self.action), ("mode", self.mode), ("outcome", self.outcome),
                                  ("actor", self.actor), ("target", self.target)) if v}


def _statement(db: Database, aq: ActivityQuery) -> Any:
    A = db.models.AuditEvent
    statement = select(A).where(A.study == db.tables.participants)
    if aq.action:
        # "approve" matches approve, approve.all, approve.hit...: the family of an action.
        statement = statement.where((A.action == aq.action) | A.action.startswith(aq.action + ".", autoescape=True))
    for column, value in ((A.mode, aq.mode), (A.outcome, aq.outcome), (A.actor, aq.actor), (A.target, aq.target)):
        if value:
            statement = statement.where(column == value)
    if aq.before_id is not None:
        statement = statement.where(A.id < aq.before_id)
    return statement.order_by(A.id.desc())


def _row(e: Any) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "mode": e.mode,
            "marketplace": e.marketplace, "target": e.target, "outcome": e.outcome, "ledger_id": e.ledger_id,
            "detail": json.loads(e.detail) if e.detail else {}}


def list_events(db: Database, aq: ActivityQuery) -> dict[str, Any]:
    with db.begin() as session:
        rows = [_row(e) for e in session.scalars(_statement(db, aq).limit(aq.limit + 1))]
    more = len(rows) > aq.limit
    rows = rows[:aq.limit]
    return {"rows": rows, "next_before_id": rows[-1]["id"] if more and rows else None}


def stream_csv(db: Database, aq: ActivityQuery, chunk: int = 1000) -> Iterator[str]:
    """Every matching event, newest first, in keyset chunks (flat memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    yield buffer.getvalue()
    before = aq.before_id
    while True:
        page = list_events(db, ActivityQuery(**{**aq.__dict__, "before_id": before, "limit": chunk}))
        if not page["rows"]:
            return
        buffer.seek(0)
        buffer.truncate()
        for r in page["rows"]:
            writer.writerow([json.dumps(r[f], sort_keys=True) if f == "detail" else
                             ("" if r[f] is None else r[f]) for f in FIELDS])
        yield buffer.getvalue()
        before = page["next_before_id"]
        if before is None:
            return
