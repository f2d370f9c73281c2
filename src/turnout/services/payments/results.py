"""What a payment run reports: one ItemResult per assignment in a BatchResult, and the
Target each acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from turnout.services.recruitment import (
    money_str,
)


@dataclass
class ItemResult:
    """What happened to one assignment. ``outcome``:

    ``ok`` (done by this call), ``already`` (done before; nothing sent), ``skipped``
    (not attempted, see message), ``busy`` (another process holds it right now),
    ``failed`` (the marketplace refused), ``unknown`` (no clear answer; retry later),
    ``refused`` (not attempted: it needs the person's explicit say-so, e.g. another
    project's assignment, or a bonus for work not yet approved).
    """

    kind: str
    assignment_id: str
    outcome: str
    message: str
    amount: str | None = None
    worker_id: str | None = None
    uniqueid: str | None = None
    ledger_id: int | None = None
    fee: str | None = None  # MTurk's commission on ``amount`` (estimated by its published rates)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assignment_id": self.assignment_id, "outcome": self.outcome,
                "message": self.message, "amount": self.amount, "fee": self.fee, "worker_id": self.worker_id,
                "uniqueid": self.uniqueid, "ledger_id": self.ledger_id}


@dataclass
class BatchResult:
    action: str
    mode: str
    items: list[ItemResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def ok(self) -> bool:
        """True when nothing failed or is left unknown or busy."""
        return not any(i.outcome in ("failed", "unknown", "busy", "refused") for i in self.items)

    @property
    def paid(self) -> Decimal:
        """What this run paid to workers (rewards or bonuses), fees not included."""
        return sum((Decimal(i.amount) for i in self.items if i.outcome == "ok" and i.amount), Decimal("0.00"))

    @property
    def fees(self) -> Decimal:
        """MTurk's commission on what this run paid (20%; 40% on rewards of HITs of 10 or
        more assignments; +5% with Masters; at least $0.01 each), as MTURK_FACTS states it."""
        return sum((Decimal(i.fee) for i in self.items if i.outcome == "ok" and i.fee), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.paid + self.fees

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.outcome] = out.get(item.outcome, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "mode": self.mode, "ok": self.ok, "counts": self.counts(),
                "paid": money_str(self.paid), "fees": money_str(self.fees), "total": money_str(self.total),
                "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class Target:
    """One assignment to act on, with what is known about it locally."""

    assignment_id: str
    worker_id: str | None = None
    hit_id: str | None = None
    participant: Any | None = None  # detached participant row, if this study has one
    status: str | None = None  # the marketplace's AssignmentStatus, when looked up

    @property
    def uniqueid(self) -> str | None:
        return self.participant.uniqueid if self.participant is not None else None
