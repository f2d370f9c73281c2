"""Money as Decimal strings, and MTurk's commission.

Floats never touch money here: MTurk's wire format is a string (``^[0-9]+(\\.)?[0-9]{0,2}$``,
botocore model) and the payments ledger compares balances to the cent.

Commission (Amazon's 2015 pricing email, quoted by mturk4academics and CloudResearch):
* 20% of the reward and of every bonus, at least $0.01 per assignment or bonus;
* +20% on the reward for HITs with 10 or more assignments (the bonus stays at 20%);
* +5% on the reward for HITs that require Masters. GUESS: that the Masters fee applies to
  the reward only, like the 10+ surcharge.
Rounding to the cent: GUESS (half-up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
BASE_RATE = Decimal("0.20")
LARGE_HIT_SURCHARGE = Decimal("0.20")
LARGE_HIT_THRESHOLD = 10
MASTERS_SURCHARGE = Decimal("0.05")
BONUS_RATE = Decimal("0.20")
MIN_FEE = CENT
# Sandbox balance is always 10000.00 (AWS "Using the sandbox" page);
# the offline marketplace starts there but, unlike the sandbox, debits it.
INITIAL_BALANCE = Decimal("10000.00")


def parse(amount: str) -> Decimal:
    """A wire money string as Decimal, quantized to the cent (pattern checked upstream)."""
    try:
        return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover - the model's pattern prevents it
        raise ValueError(f"not a money amount: {amount!r}") from exc


def fmt(amount: Decimal) -> str:
    """Wire form with two decimals, as MTurk prints balances ("10000.00")."""
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):.2f}"


def reward_fee_rate(max_assignments: int, masters: bool) -> Decimal:
    rate = BASE_RATE
    if max_assignments >= LARGE_HIT_THRESHOLD:
        rate += LARGE_HIT_SURCHARGE
    if masters:
        rate += MASTERS_SURCHARGE
    return rate


def commission(amount: Decimal, rate: Decimal) -> Decimal:
    """MTurk's fee on one payment: ``rate`` of it, at least one cent (nothing on $0)."""
    if amount <= ZERO:
        return ZERO
    return max(MIN_FEE, (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP))


def reward_cost(reward: Decimal, max_assignments: int, masters: bool) -> tuple[Decimal, Decimal]:
    """(reward, fee) charged when one assignment of such a HIT is approved."""
    return reward, commission(reward, reward_fee_rate(max_assignments, masters))


def bonus_cost(amount: Decimal) -> tuple[Decimal, Decimal]:
    """(bonus, fee) charged by SendBonus."""
    return amount, commission(amount, BONUS_RATE)
