"""Read-only snapshots the marketplace hands out: to operations.py (which shapes them for
the wire) and to Python callers such as the worker-site pages and simulated workers.

They are frozen dataclasses computed inside one transaction, so a caller never sees a
half-applied change, and holding one never locks the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Internal assignment statuses. Only the last three are visible through the Requester API
# (botocore enum AssignmentStatus); the others exist only on the worker side: the
# Requester API shows Submitted, Approved and Rejected assignments, nothing earlier.
ACCEPTED = "Accepted"
RETURNED = "Returned"
ABANDONED = "Abandoned"
SUBMITTED = "Submitted"
APPROVED = "Approved"
REJECTED = "Rejected"
REVIEWABLE_STATUSES = (SUBMITTED, APPROVED, REJECTED)


@dataclass(frozen=True)
class Hit:
    hit_id: str
    hit_type_id: str
    hit_group_id: str
    creation_time: datetime
    title: str
    description: str
    keywords: str | None
    reward: Decimal
    max_assignments: int
    auto_approval_delay: int
    assignment_duration: int
    expiration: datetime
    status: str  # Assignable | Unassignable | Reviewable | Reviewing
    review_status: str
    pending: int
    available: int
    completed: int
    submitted: int  # awaiting review; not a wire field, handy for dashboards
    question: str | None = None
    hit_layout_id: str | None = None
    requester_annotation: str | None = None
    qualification_requirements: list[dict[str, Any]] = field(default_factory=list)
    external_url: str | None = None
    masters_required: bool = False


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    hit_id: str
    worker_id: str
    status: str  # one of the constants above
    accept_time: datetime
    deadline: datetime
    submit_time: datetime | None = None
    auto_approval_time: datetime | None = None
    approval_time: datetime | None = None
    rejection_time: datetime | None = None
    returned_time: datetime | None = None
    abandoned_time: datetime | None = None
    answer: str | None = None
    requester_feedback: str | None = None


@dataclass(frozen=True)
class Worker:
    """A worker in the offline marketplace's registry.

    The attributes feed MTurk's system qualifications (see quals.py). They are whatever
    the registry was seeded with. GUESS (a simplification): approvals made here do not
    change them; real MTurk updates them on its own schedule.
    """

    worker_id: str
    percent_approved: int = 100
    number_approved: int = 1000
    country: str = "US"
    subdivision: str | None = None
    masters: bool = False
    adult: bool = True


@dataclass(frozen=True)
class QualificationType:
    qualification_type_id: str
    name: str
    description: str
    status: str
    creation_time: datetime
    keywords: str | None = None
    retry_delay: int | None = None
    test: str | None = None
    answer_key: str | None = None
    test_duration: int | None = None
    auto_granted: bool = False
    auto_granted_value: int | None = None
    is_requestable: bool = True
    system: bool = False


@dataclass(frozen=True)
class Qualification:
    qualification_type_id: str
    worker_id: str
    integer_value: int | None
    status: str  # Granted | Revoked
    grant_time: datetime


@dataclass(frozen=True)
class BonusPayment:
    worker_id: str
    assignment_id: str
    hit_id: str
    amount: Decimal
    fee: Decimal
    reason: str
    grant_time: datetime


@dataclass(frozen=True)
class Event:
    """What MTurk would send as a notification (event types from the botocore model)."""

    seq: int
    time: datetime
    event_type: str
    hit_id: str | None
    hit_type_id: str | None
    assignment_id: str | None
    worker_id: str | None


@dataclass(frozen=True)
class Transaction:
    """One debit of the requester's balance."""

    seq: int
    time: datetime
    kind: str  # reward | bonus
    amount: Decimal
    fee: Decimal
    balance_after: Decimal
    assignment_id: str | None
    hit_id: str | None
    worker_id: str | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None = None
