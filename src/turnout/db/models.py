"""The database schema, built per configuration.

psiTurk lets a project choose its table names in config.txt, so the models are made by a
factory for a given ``TableNames`` rather than declared once at import time. The
participant table keeps psiTurk's columns exactly (analysis scripts read them); turnout's
own columns carry a ``turnout_`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

from turnout.config import TableNames
from turnout.datastring import event_rows, parse_object, question_rows, rows_to_csv, trial_rows
from turnout.db.cell_counts import build_cell_count_model
from turnout.db.marketplace_models import build_marketplace_models
from turnout.db.reconcile_models import build_reconcile_models
from turnout.db.scheduler_models import SchedulerModels, build_scheduler_models
from turnout.db.types import LongText, UTCDateTime

TRANSITIONS_TABLE = "turnout_status_transition"


class ModelMixin:
    """Common helpers for every turnout model (psiTurk's ``object_as_dict`` included)."""

    def object_as_dict(self, filter_these: list[str] | None = None) -> dict[str, Any]:
        skip = set(filter_these or [])
        attrs = self.__mapper__.column_attrs  # type: ignore[attr-defined]
        return {c.key: getattr(self, c.key) for c in attrs if c.key not in skip}


@dataclass(frozen=True)
class Models:
    Base: type[DeclarativeBase]
    Participant: type[Any]
    Hit: type[Any]
    StatusTransition: type[Any]
    # turnout's recruitment tables (HIT records, payments ledger, audit events, quals).
    HitRecord: type[Any]
    LedgerEntry: type[Any]
    AuditEvent: type[Any]
    OwnedQualification: type[Any]
    QualificationGrant: type[Any]
    # reconciliation with the marketplace: excluded rows, check runs.
    Exclusion: type[Any]
    ReconcileRun: type[Any]
    # Campaigns, tasks, their runs and the runner lease (scheduler_models.py).
    scheduling: SchedulerModels | None = None
    # Participants per cell, kept by triggers (cell_counts.py, migration 0015).
    CellCount: type[Any] | None = None


def build_models(tables: TableNames) -> Models:
    """Create mapped classes for one database layout."""

    class Base(ModelMixin, DeclarativeBase):
        pass

    participants = tables.participants

    class Participant(Base):
        __tablename__ = participants
        __table_args__ = (
            Index(f"ix_{participants}_workerid", "workerid"),
            Index(f"ix_{participants}_assignmentid", "assignmentid"),
            Index(f"ix_{participants}_hitid", "hitid"),
            # Wide enough that counterbalancing counts finished rows per cell from it alone.
            Index(f"ix_{participants}_balance", "codeversion", "mode", "status", "cond", "counterbalance",
                  "beginhit"),
            Index(f"ix_{participants}_recent", "codeversion", "mode", "beginhit"),
            # The dashboard's newest-first pages walk this (migration 0007).
            Index(f"ix_{participants}_newest", "beginhit", "uniqueid"),
        )

        uniqueid: Mapped[str] = mapped_column(String(128), primary_key=True)
        assignmentid: Mapped[str] = mapped_column(String(128), nullable=False)
        workerid: Mapped[str] = mapped_column(String(128), nullable=False)
        hitid: Mapped[str] = mapped_column(String(128), nullable=False)
        ipaddress: Mapped[str | None] = mapped_column(String(128))
        browser: Mapped[str | None] = mapped_column(String(128))
        platform: Mapped[str | None] = mapped_column(String(128))
        language: Mapped[str | None] = mapped_column(String(128))
        cond: Mapped[int | None] = mapped_column(Integer)
        counterbalance: Mapped[int | None] = mapped_column(Integer)
        codeversion: Mapped[str | None] = mapped_column(String(128))
        beginhit: Mapped[datetime | None] = mapped_column(UTCDateTime())
        beginexp: Mapped[datetime | None] = mapped_column(UTCDateTime())
        endhit: Mapped[datetime | None] = mapped_column(UTCDateTime())
        bonus: Mapped[float | None] = mapped_column(Float, default=0)
        status: Mapped[int | None] = mapped_column(Integer, default=1)
        mode: Mapped[str | None] = mapped_column(String(128))
        datastring: Mapped[str | None] = deferred(mapped_column(LongText))
        # turnout's own columns. The token proves a browser was handed this participant's
        # /exp page; the trial count lets /sync refuse a stale save without parsing the blob.
        token: Mapped[str | None] = mapped_column("turnout_token", String(64))
        trial_count: Mapped[int | None] = mapped_column("turnout_trials", Integer, default=0)
        # The order key of the newest save applied (see services.participants.save_order_key).
        save_key: Mapped[str | None] = mapped_column("turnout_save", String(40))

        # Set by the psiturk compatibility layer from experiment_code_version.
        default_codeversion: ClassVar[str | None] = None

        def __init__(self, **kwargs: Any) -> None:
            # psiTurk's constructor derived these, and project code builds
            # Participant(workerid=..., assignmentid=..., hitid=...) relying on it.
            if "uniqueid" not in kwargs and "workerid" in kwargs and "assignmentid" in kwargs:
                kwargs["uniqueid"] = f"{kwargs['workerid']}:{kwargs['assignmentid']}"
            kwargs.setdefault("status", 1)
            kwargs.setdefault("codeversion", type(self).default_codeversion)
            kwargs.setdefault("beginhit", datetime.now(UTC))
            super().__init__(**kwargs)

        def __repr__(self) -> str:
            return f"<Participant {self.uniqueid} status={self.status}>"

        # psiTurk's CSV helpers, kept for custom.py code that calls them.
        def get_trial_data(self) -> str:
            data = parse_object(self.datastring)
            return "" if data is None else rows_to_csv(trial_rows(self.uniqueid, data))

        def get_event_data(self) -> str:
            data = parse_object(self.datastring)
            return "" if data is None else rows_to_csv(event_rows(self.uniqueid, data))

        def get_question_data(self) -> str:
            data = parse_object(self.datastring)
            return "" if data is None else rows_to_csv(question_rows(self.uniqueid, data))

    class Hit(Base):
        __tablename__ = tables.hits
        hitid: Mapped[str] = mapped_column(String(128), primary_key=True)

    class StatusTransition(Base):
        """One row per participant status change: the audit trail and an outbox for later jobs."""

        __tablename__ = TRANSITIONS_TABLE
        __table_args__ = (
            Index("ix_turnout_status_transition_uniqueid", "uniqueid"),
            Index("ix_turnout_status_transition_unprocessed", "processed_at"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        table_name: Mapped[str] = mapped_column(String(64), nullable=False)
        uniqueid: Mapped[str] = mapped_column(String(128), nullable=False)
        old_status: Mapped[int | None] = mapped_column(Integer)
        new_status: Mapped[int] = mapped_column(Integer, nullable=False)
        reason: Mapped[str] = mapped_column(String(64), nullable=False)
        at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        detail: Mapped[str | None] = mapped_column(Text)

    market = build_marketplace_models(Base)
    CellCount = build_cell_count_model(Base, participants)
    Participant._turnout_cell_count = CellCount  # counterbalancing reads it (experiment/counterbalance.py)
    reconcile = build_reconcile_models(Base)
    return Models(Base=Base, Participant=Participant, Hit=Hit, StatusTransition=StatusTransition,
                  HitRecord=market.HitRecord, LedgerEntry=market.LedgerEntry, AuditEvent=market.AuditEvent,
                  OwnedQualification=market.OwnedQualification,
                  QualificationGrant=market.QualificationGrant,
                  Exclusion=reconcile.Exclusion, ReconcileRun=reconcile.ReconcileRun,
                  scheduling=build_scheduler_models(Base),
                  CellCount=CellCount)
