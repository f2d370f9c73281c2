"""The dashboard's tables: lab accounts, API tokens, failed logins, background batches.

Like the recruitment tables their names are fixed (``turnout_*``) and rows carry ``study``
(the project's participant table name), so projects sharing a database keep apart. They
live on their own declarative base, not on the project's ``Base``: the project's
``create_all`` for custom.py tables must never create (or skip) them; migration 0007 does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from turnout.db.types import UTCDateTime

USER_TABLE = "turnout_user"
TOKEN_TABLE = "turnout_api_token"
LOGIN_FAILURE_TABLE = "turnout_login_failure"
BATCH_TABLE = "turnout_batch"
BATCH_ITEM_TABLE = "turnout_batch_item"
DASHBOARD_TABLES = (USER_TABLE, TOKEN_TABLE, LOGIN_FAILURE_TABLE, BATCH_TABLE, BATCH_ITEM_TABLE)


class DashboardBase(DeclarativeBase):
    pass


class User(DashboardBase):
    """A lab account. ``password_hash`` is werkzeug's salted hash; the password is never kept."""

    __tablename__ = USER_TABLE
    __table_args__ = (UniqueConstraint("study", "username", name="uq_turnout_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(64), nullable=False)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ApiToken(DashboardBase):
    """A bearer token for scripts. Only its SHA-256 is stored, so a database dump grants nothing."""

    __tablename__ = TOKEN_TABLE
    __table_args__ = (UniqueConstraint("token_hash", name="uq_turnout_api_token_hash"),
                      Index("ix_turnout_api_token_study", "study"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginFailure(DashboardBase):
    """One failed login. Counted per address and per account over a window, in the database,
    so the limit holds across every worker process (and every server sharing the database)."""

    __tablename__ = LOGIN_FAILURE_TABLE
    __table_args__ = (Index("ix_turnout_login_failure_address", "address", "at"),
                      Index("ix_turnout_login_failure_username", "study", "username", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Batch(DashboardBase):
    """A batch action (approve all, bonus all, expire all...) run in the background.

    ``lease_owner``/``lease_until`` say which process is running it; a lease that ran out
    means that process died, and whoever looks at the batch next takes it over.
    """

    __tablename__ = BATCH_TABLE
    __table_args__ = (Index("ix_turnout_batch_scope", "study", "mode", "action", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study: Mapped[str] = mapped_column(String(64), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    codeversion: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    params: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # running | done
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchItem(DashboardBase):
    """One target of a batch (an assignment or a HIT) and what happened to it."""

    __tablename__ = BATCH_ITEM_TABLE
    __table_args__ = (Index("ix_turnout_batch_item_batch", "batch_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(32), nullable=False)
    target: Mapped[str] = mapped_column(String(128), nullable=False)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | done | skipped | failed
    message: Mapped[str | None] = mapped_column(Text)
    ledger_id: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
