"""turnout's scheduling tables: campaigns, their rounds and HITs, tasks, runs, the runner lease.

Like the recruitment tables they have fixed ``turnout_*`` names and carry ``study`` (the
project's participant table), so projects sharing one database keep them apart. psiTurk's
own ``campaign`` table (``campaigns_table_name``) is left as psiTurk wrote it: its rows
pickled ORM objects into jobs and its "one active campaign" rule had no constraint.

The APScheduler job table (``jobs_table_name``) is not here: APScheduler's
SQLAlchemyJobStore owns its layout and creates it when the runner starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnout.db.types import UTCDateTime

CAMPAIGN_TABLE = "turnout_campaign"
CAMPAIGN_HIT_TABLE = "turnout_campaign_hit"
ROUND_TABLE = "turnout_campaign_round"
TASK_TABLE = "turnout_task"
RUN_TABLE = "turnout_task_run"
LEASE_TABLE = "turnout_runner_lease"
SCHEDULER_TABLES = (CAMPAIGN_TABLE, CAMPAIGN_HIT_TABLE, ROUND_TABLE, TASK_TABLE, RUN_TABLE, LEASE_TABLE)


@dataclass(frozen=True)
class SchedulerModels:
    Campaign: type[Any]
    CampaignRound: type[Any]
    CampaignHit: type[Any]
    Task: type[Any]
    TaskRun: type[Any]
    RunnerLease: type[Any]


def build_scheduler_models(Base: type[Any]) -> SchedulerModels:  # noqa: N803 - a class
    """Map the scheduling tables onto ``Base`` (called by ``build_models``)."""

    class Campaign(Base):
        """Recruit ``goal`` completed participants of one codeversion and mode, in rounds.

        ``active_key`` is ``study|codeversion|mode`` while the campaign runs and NULL once it
        ends; its unique constraint is how the database (not a check-then-insert) keeps a
        second active campaign out. NULLs never collide on SQLite, PostgreSQL or MariaDB.
        """

        __tablename__ = CAMPAIGN_TABLE
        __table_args__ = (
            UniqueConstraint("active_key", name="uq_turnout_campaign_active"),
            Index("ix_turnout_campaign_scope", "study", "codeversion", "mode"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        codeversion: Mapped[str] = mapped_column(String(128), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        goal: Mapped[int] = mapped_column(Integer, nullable=False)
        per_round: Mapped[int] = mapped_column(Integer, nullable=False)
        interval_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
        reward: Mapped[str] = mapped_column(String(16), nullable=False)
        duration_hours: Mapped[float] = mapped_column(Float, nullable=False)
        budget: Mapped[str | None] = mapped_column(String(16))
        active_key: Mapped[str | None] = mapped_column(String(255))
        created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        created_by: Mapped[str | None] = mapped_column(String(128))
        next_round_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        rounds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
        ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        end_reason: Mapped[str | None] = mapped_column(Text)

    class CampaignRound(Base):
        """One round, written before anything is posted (so a rerun finishes, never repeats it)."""

        __tablename__ = ROUND_TABLE
        __table_args__ = (UniqueConstraint("campaign_id", "number", name="uq_turnout_campaign_round"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        campaign_id: Mapped[int] = mapped_column(Integer, nullable=False)
        number: Mapped[int] = mapped_column(Integer, nullable=False)
        state: Mapped[str] = mapped_column(String(16), nullable=False)  # posting -> done | failed
        started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        completed: Mapped[int] = mapped_column(Integer, nullable=False)
        open: Mapped[int] = mapped_column(Integer, nullable=False)
        planned: Mapped[int] = mapped_column(Integer, nullable=False)
        posted: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
        note: Mapped[str | None] = mapped_column(Text)

    class CampaignHit(Base):
        """A HIT a round planned: its request key (the UniqueRequestToken's source) comes first,
        its HIT ID after CreateHIT answers. ``closed_at`` marks a HIT that can no longer
        bring anyone in, so later rounds stop asking the marketplace about it."""

        __tablename__ = CAMPAIGN_HIT_TABLE
        __table_args__ = (
            UniqueConstraint("request_key", name="uq_turnout_campaign_hit_key"),
            Index("ix_turnout_campaign_hit_campaign", "campaign_id", "closed_at"),
        )

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        campaign_id: Mapped[int] = mapped_column(Integer, nullable=False)
        round_number: Mapped[int] = mapped_column(Integer, nullable=False)
        position: Mapped[int] = mapped_column(Integer, nullable=False)
        request_key: Mapped[str] = mapped_column(String(191), nullable=False)
        assignments: Mapped[int] = mapped_column(Integer, nullable=False)
        cost: Mapped[str] = mapped_column(String(16), nullable=False)  # rewards + fees, if all approved
        hit_id: Mapped[str | None] = mapped_column(String(64))
        closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    class Task(Base):
        """A scheduled task (today: approve-all for one mode and codeversion)."""

        __tablename__ = TASK_TABLE
        __table_args__ = (Index("ix_turnout_task_study", "study", "removed_at"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        kind: Mapped[str] = mapped_column(String(32), nullable=False)
        mode: Mapped[str] = mapped_column(String(16), nullable=False)
        codeversion: Mapped[str] = mapped_column(String(128), nullable=False)
        interval_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
        created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        created_by: Mapped[str | None] = mapped_column(String(128))
        next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    class TaskRun(Base):
        """Every run of every job: when, how it ended, what it did, what went wrong."""

        __tablename__ = RUN_TABLE
        __table_args__ = (Index("ix_turnout_task_run_job", "study", "job_id", "started_at"),)

        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        study: Mapped[str] = mapped_column(String(64), nullable=False)
        job_id: Mapped[str] = mapped_column(String(64), nullable=False)
        kind: Mapped[str] = mapped_column(String(32), nullable=False)
        started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
        outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # running, ok, noop, failed, skipped
        counts: Mapped[str | None] = mapped_column(Text)  # JSON
        error: Mapped[str | None] = mapped_column(Text)
        runner: Mapped[str | None] = mapped_column(String(128))

    class RunnerLease(Base):
        """Who runs the jobs of one job store; a holder that stops renewing loses it."""

        __tablename__ = LEASE_TABLE

        name: Mapped[str] = mapped_column(String(64), primary_key=True)
        holder: Mapped[str] = mapped_column(String(128), nullable=False)
        host: Mapped[str] = mapped_column(String(128), nullable=False)
        pid: Mapped[int] = mapped_column(Integer, nullable=False)
        started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
        expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    return SchedulerModels(Campaign=Campaign, CampaignRound=CampaignRound, CampaignHit=CampaignHit, Task=Task,
                           TaskRun=TaskRun, RunnerLease=RunnerLease)
