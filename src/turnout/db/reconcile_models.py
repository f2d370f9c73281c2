"""Tables of the reconciliation with the marketplace: exclusions and the last checks.

An exclusion takes one participant row out of counterbalancing and the default exports
without deleting or changing it (psiTurk's data is kept as it was); a check run records
what the last comparison found, so the dashboard can show a badge without calling the
marketplace on every page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnout.db.types import LongText, UTCDateTime

EXCLUSION_TABLE = "turnout_exclusion"
RECONCILE_RUN_TABLE = "turnout_reconcile_run"


@dataclass(frozen=True)
class ReconcileModels:
    Exclusion: type[Any]
    ReconcileRun: type[Any]


def build_reconcile_models(Base: type[Any]) -> ReconcileModels:  # noqa: N803 - a class
    class Exclusion(Base):
        """A participant row left out of counterbalancing and the default exports."""

        __tablename__ = EXCLUSION_TABLE
        __table_args__ = (
            UniqueConstraint("study", "uniqueid", name="uq_turnout_exclusion_row"),
            Index("ix_turnout_exclusion_assignment", "assignment_id"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        uniqueid: Mapped[str] = mapped_column(String(128), nullable=False)
        assignment_id: Mapped[str | None] = mapped_column(String(64))
        reason: Mapped[str] = mapped_column(Text, nullable=False)
        actor: Mapped[str] = mapped_column(String(128), nullable=False)
        at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    class ReconcileRun(Base):
        """One comparison with the marketplace: when, what scope, what it found."""

        __tablename__ = RECONCILE_RUN_TABLE
        __table_args__ = (Index("ix_turnout_reconcile_run_scope", "study", "mode", "at"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        codeversion: Mapped[str | None] = mapped_column(String(128))
        at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        actor: Mapped[str] = mapped_column(String(128), nullable=False)
        checked: Mapped[int] = mapped_column(Integer, nullable=False)
        differences: Mapped[int] = mapped_column(Integer, nullable=False)
        summary: Mapped[str | None] = mapped_column(Text)  # JSON: {kind: count}
        # Since 0014: a check running in the background (state running|done|failed; NULL =
        # a row from before, done), its progress in HITs, and the report the page renders.
        state: Mapped[str | None] = mapped_column(String(16))
        hits_done: Mapped[int | None] = mapped_column(Integer)
        hits_total: Mapped[int | None] = mapped_column(Integer)
        report: Mapped[str | None] = mapped_column(LongText)  # JSON: Report.as_dict()
        error: Mapped[str | None] = mapped_column(Text)
        lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    return ReconcileModels(Exclusion=Exclusion, ReconcileRun=ReconcileRun)
