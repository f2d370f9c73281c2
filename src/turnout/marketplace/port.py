"""The marketplace port: the few calls turnout's rules make on a marketplace, and the
marketplace-neutral values and failures they come back as.

The ledger's four steps (intent, claim, call, outcome), study scoping, fee reporting and
live confirmation are rules of turnout, not of a marketplace; they live in
``turnout.services`` and talk to a marketplace only through a ``Marketplace``. An adapter
(``turnout.marketplace.mturk`` today, Prolific later) turns these calls into its API and
sorts every error it gets into a ``MarketFailure`` of one ``FailureKind``, so no rule
ever reads a marketplace's error text. docs/marketplace.md ("The marketplace port") says
what an adapter must implement.

HIT records (``get_hit``, ``list_hits``, ``assignments_for_hit``) keep MTurk's field names
(``HITId``, ``HITStatus``, ``AssignmentStatus``...) as the shared vocabulary of the views;
an adapter for another marketplace maps its records onto those names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable


class FailureKind:
    """What a failed call means for the rules; the adapter decides, from its own errors."""

    NOT_FOUND = "not-found"            # no such HIT / assignment / worker
    ALREADY_DONE = "already-done"      # a repeated request token: the first one was applied
    WRONG_STATE = "wrong-state"        # e.g. approving an assignment that is no longer Submitted
    INVALID = "invalid"                # refused as malformed or not allowed; nothing happened
    THROTTLED = "throttled"            # not processed; try again later
    AUTH = "auth"                      # no or wrong credentials; nothing was sent
    UNKNOWN_OUTCOME = "unknown-outcome"  # timeout, dropped connection, 5xx: it may have happened
    REFUSED = "refused"                # any other definite refusal


@dataclass(frozen=True)
class MarketFailure:
    """A failed marketplace call, sorted by the adapter.

    ``code`` is the marketplace's own error code (kept for the ledger row and the audit
    trail), ``message`` its text verbatim, ``detail`` a finer code if it has one.
    ``ambiguous`` names an earlier attempt of the same call (the adapter's own retries)
    that may have been applied, even when the last answer was a definite refusal.
    """

    kind: str
    code: str
    message: str
    detail: str | None = None
    ambiguous: str | None = None

    @property
    def unknown(self) -> bool:
        return self.kind == FailureKind.UNKNOWN_OUTCOME

    @property
    def text(self) -> str:
        return f"{self.message} [{self.detail}]" if self.detail else self.message

    # The name the services used before the port; kept so their records read the same.
    @property
    def turk_code(self) -> str | None:
        return self.detail


class MarketError(Exception):
    """Raised by every port call that fails at the marketplace (never for a bug of ours)."""

    def __init__(self, failure: MarketFailure, description: str | None = None) -> None:
        super().__init__(failure.text)
        self.failure = failure
        # One line for a person (CLI, logs) naming the call and the marketplace's answer.
        self.description = description or failure.text


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    worker_id: str
    hit_id: str
    status: str  # "Submitted", "Approved" or "Rejected"


@dataclass(frozen=True)
class Bonus:
    worker_id: str | None
    assignment_id: str
    amount: Decimal
    granted: datetime | None = None


@runtime_checkable
class Marketplace(Protocol):
    """What the services call. Every method raises ``MarketError`` on a marketplace failure."""

    name: str         # "mturk"
    environment: str  # "local", "sandbox" or "live"

    @property
    def where(self) -> str:
        """Where calls go, for the audit trail (e.g. an endpoint URL)."""

    # --- HITs -----------------------------------------------------------------------
    def post_hit(self, request: Any, *, token: str) -> str:
        """Post a HIT described by a ``HitRequest``; returns its id. ``token`` makes a retry
        idempotent: a repeat returns the first HIT's id (or fails ``ALREADY_DONE``)."""

    def add_assignments(self, hit_id: str, count: int, *, token: str) -> None: ...

    def extend_expiry(self, hit_id: str, expires_at: datetime) -> None: ...

    def expire_hit(self, hit_id: str, *, now: datetime) -> None: ...

    def delete_hit(self, hit_id: str) -> None: ...

    def get_hit(self, hit_id: str) -> dict[str, Any]: ...

    def list_hits(self) -> Iterator[dict[str, Any]]: ...

    # --- assignments and money --------------------------------------------------------
    def get_assignment(self, assignment_id: str) -> Assignment: ...

    def assignment_record(self, assignment_id: str) -> dict[str, Any]:
        """The whole assignment record (for views and reconciliation)."""

    def assignments_for_hit(self, hit_id: str, statuses: Sequence[str] = ()) -> Iterator[dict[str, Any]]: ...

    def approve(self, assignment_id: str, *, feedback: str | None = None) -> None: ...

    def unreject(self, assignment_id: str, *, feedback: str | None = None) -> None:
        """Approve an assignment that was rejected (pays its reward)."""

    def reject(self, assignment_id: str, *, feedback: str) -> None: ...

    def send_bonus(self, worker_id: str, assignment_id: str, amount: str, reason: str, *, token: str) -> None:
        """Pay a bonus; a repeat of ``token`` must not pay twice (``ALREADY_DONE``)."""

    def bonuses(self, *, hit_id: str | None = None, assignment_id: str | None = None) -> Iterator[Bonus]:
        """Bonuses paid on a HIT or an assignment (to find one that was paid)."""

    def balance(self) -> dict[str, Any]: ...

    # --- workers ----------------------------------------------------------------------
    def list_qualification_types(self, **params: Any) -> Iterator[dict[str, Any]]: ...

    def find_qualification(self, name: str) -> str | None: ...

    def create_qualification(self, name: str, description: str) -> str: ...

    def qualify_worker(self, qualification_id: str, worker_id: str, *, value: int = 1) -> None:
        """Grant a qualification (how a worker is blocked from a study's later HITs)."""

    # --- marketplace rules the services report but do not make -------------------------
    def fee_rate(self, *, assignments: int, qualifications: Any = None) -> Decimal:
        """The marketplace's commission on a HIT's reward (a fraction, e.g. 0.20), given its
        size and its requirements (as built for it, or as stored: JSON text)."""

    def bonus_fee_rate(self) -> Decimal: ...
