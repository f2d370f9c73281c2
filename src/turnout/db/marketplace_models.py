"""turnout's recruitment tables: HIT records, the payments ledger, audit events, owned quals.

Their names are fixed (``turnout_*``) and every row carries ``study`` (the project's
participant table name), so two projects sharing one database, as psiTurk allowed, keep
their records apart without per-project table names.

Money is stored as Decimal *strings* (``"1.25"``), the form MTurk's wire protocol uses,
so no float ever rounds a payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnout.db.types import UTCDateTime

HIT_RECORD_TABLE = "turnout_hit"
LEDGER_TABLE = "turnout_ledger"
AUDIT_TABLE = "turnout_audit_event"
QUAL_TABLE = "turnout_qualification"
QUAL_GRANT_TABLE = "turnout_qualification_grant"
MARKETPLACE_TABLES = (HIT_RECORD_TABLE, LEDGER_TABLE, AUDIT_TABLE, QUAL_TABLE, QUAL_GRANT_TABLE)


@dataclass(frozen=True)
class MarketplaceModels:
    HitRecord: type[Any]
    LedgerEntry: type[Any]
    AuditEvent: type[Any]
    OwnedQualification: type[Any]
    QualificationGrant: type[Any]


def build_marketplace_models(Base: type[Any]) -> MarketplaceModels:  # noqa: N803 - a class
    """Map turnout's recruitment tables onto ``Base`` (called by ``build_models``)."""

    class HitRecord(Base):
        """A HIT this project asked a marketplace to create: written *before* the call.

        ``state`` is pending -> created | failed | unknown. ``request_token`` is sent as
        CreateHIT's UniqueRequestToken, so re-sending an unknown create cannot post twice
        (within MTurk's 24 h token lifetime).
        """

        __tablename__ = HIT_RECORD_TABLE
        __table_args__ = (
            UniqueConstraint("request_key", name="uq_turnout_hit_request_key"),
            Index("ix_turnout_hit_scope", "study", "mode", "codeversion"),
            Index("ix_turnout_hit_hit_id", "hit_id"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        codeversion: Mapped[str | None] = mapped_column(String(128))
        request_key: Mapped[str] = mapped_column(String(191), nullable=False)
        request_token: Mapped[str] = mapped_column(String(64), nullable=False)
        state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
        hit_id: Mapped[str | None] = mapped_column(String(64))
        title: Mapped[str | None] = mapped_column(String(255))
        reward: Mapped[str] = mapped_column(String(16), nullable=False)
        max_assignments: Mapped[int] = mapped_column(Integer, nullable=False)
        lifetime_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
        duration_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
        annotation: Mapped[str | None] = mapped_column(String(255))
        qualifications: Mapped[str | None] = mapped_column(Text)  # JSON, as sent
        created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        actor: Mapped[str | None] = mapped_column(String(128))
        error: Mapped[str | None] = mapped_column(Text)

    class LedgerEntry(Base):
        """One approve, reject, unreject or bonus: the intent, its claim, its outcome.

        ``idempotency_key`` is unique (``bonus:<mode>:<assignment>`` ...), so the same
        payment can be *recorded* once only; ``state`` moves pending -> claimed ->
        succeeded | failed | unknown by conditional UPDATEs, so it is *sent* by one
        process at a time.
        """

        __tablename__ = LEDGER_TABLE
        __table_args__ = (
            UniqueConstraint("idempotency_key", name="uq_turnout_ledger_key"),
            Index("ix_turnout_ledger_assignment", "assignment_id"),
            Index("ix_turnout_ledger_state", "state"),
            Index("ix_turnout_ledger_scope", "study", "mode", "kind"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        kind: Mapped[str] = mapped_column(String(16), nullable=False)
        idempotency_key: Mapped[str] = mapped_column(String(191), nullable=False)
        request_token: Mapped[str | None] = mapped_column(String(64))
        assignment_id: Mapped[str] = mapped_column(String(64), nullable=False)
        worker_id: Mapped[str | None] = mapped_column(String(64))
        hit_id: Mapped[str | None] = mapped_column(String(64))
        uniqueid: Mapped[str | None] = mapped_column(String(128))
        codeversion: Mapped[str | None] = mapped_column(String(128))
        amount: Mapped[str | None] = mapped_column(String(16))
        reason: Mapped[str | None] = mapped_column(Text)
        state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
        attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
        claimed_by: Mapped[str | None] = mapped_column(String(64))
        claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        error_code: Mapped[str | None] = mapped_column(String(128))
        error_message: Mapped[str | None] = mapped_column(Text)
        actor: Mapped[str | None] = mapped_column(String(128))

    class AuditEvent(Base):
        """Who did what, when, on which marketplace, and how it ended."""

        __tablename__ = AUDIT_TABLE
        __table_args__ = (
            Index("ix_turnout_audit_event_at", "study", "at"),
            Index("ix_turnout_audit_event_target", "target"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        actor: Mapped[str] = mapped_column(String(128), nullable=False)
        action: Mapped[str] = mapped_column(String(64), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        marketplace: Mapped[str] = mapped_column(String(255), nullable=False)
        target: Mapped[str | None] = mapped_column(String(128))
        outcome: Mapped[str] = mapped_column(String(16), nullable=False)
        ledger_id: Mapped[int | None] = mapped_column(Integer)
        detail: Mapped[str | None] = mapped_column(Text)  # JSON

    class OwnedQualification(Base):
        """A qualification type turnout created for this study (e.g. "took part already")."""

        __tablename__ = QUAL_TABLE
        __table_args__ = (UniqueConstraint("study", "mode", "purpose", name="uq_turnout_qualification_purpose"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        purpose: Mapped[str] = mapped_column(String(32), nullable=False)
        qualification_type_id: Mapped[str] = mapped_column(String(64), nullable=False)
        name: Mapped[str] = mapped_column(String(255), nullable=False)
        created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    class QualificationGrant(Base):
        """A worker turnout already granted an owned qualification to (so it is sent once)."""

        __tablename__ = QUAL_GRANT_TABLE
        __table_args__ = (UniqueConstraint("qualification_type_id", "worker_id", name="uq_turnout_qual_grant"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        qualification_type_id: Mapped[str] = mapped_column(String(64), nullable=False)
        worker_id: Mapped[str] = mapped_column(String(64), nullable=False)
        granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    return MarketplaceModels(HitRecord=HitRecord, LedgerEntry=LedgerEntry, AuditEvent=AuditEvent,
                             OwnedQualification=OwnedQualification, QualificationGrant=QualificationGrant)
