"""How money is told to the person deciding: what a HIT will cost and what a run paid,
with MTurk's fees, and whether the money is real in this mode.

The numbers come from ``hits.cost_estimate`` and ``payments.BatchResult``; this module
only words them, once, for every door that shows them (the CLI today).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from turnout.services.hits import LARGE_HIT
from turnout.services.recruitment import money_str

_NO_REAL_MONEY = {"local": " (offline marketplace: no real money)", "sandbox": " (sandbox: no real money)"}


class _Paid(Protocol):
    mode: str
    paid: Decimal
    fees: Decimal
    total: Decimal


def no_real_money(mode: str) -> str:
    """`` (sandbox: no real money)``-style note for modes that move no real money; "" for live."""
    return _NO_REAL_MONEY.get(mode, "")


def hit_cost_line(mode: str, title: str, cost: Any) -> str:
    """What posting a HIT costs, as ``turnout hit create`` asks before it posts:
    ``sandbox HIT "T": 3 assignment(s) x $0.50 = $1.50 + MTurk fees $0.30 (20%) = $1.80 (...)``."""
    return (f"{mode} HIT \"{title}\": {cost.assignments} assignment(s) x ${money_str(cost.reward)}"
            f" = ${money_str(cost.rewards)} + MTurk fees ${money_str(cost.fees)} "
            f"({int(cost.fee_rate * 100)}%) = ${money_str(cost.total)}{no_real_money(mode)}")


def large_hit_note(cost: Any) -> str | None:
    """The warning for a HIT whose size doubles MTurk's fee, or None."""
    if cost.assignments >= LARGE_HIT:
        return "note: 10 or more assignments doubles MTurk's fee (40% instead of 20%)"
    return None


def paid_line(result: _Paid) -> str:
    """What a run paid, as ``hit create`` announces a cost: to workers, MTurk's fees, total."""
    return (f"; paid ${money_str(result.paid)} to workers + MTurk fees ${money_str(result.fees)} = "
            f"${money_str(result.total)}{no_real_money(result.mode)}")
