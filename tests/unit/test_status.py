"""The participant status state machine, checked over every (from, to) pair.

The expected table is written out here on its own, from the rules the design states, so
a change to ``ALLOWED`` that breaks a rule fails a test instead of redefining it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.clock import ManualClock
from turnout.experiment.status import (
    ALLOWED,
    COMPLETED_STATUSES,
    Outcome,
    Status,
    can_transition,
    transition,
)

S = Status
FINISHED = {S.COMPLETED, S.SUBMITTED, S.CREDITED, S.BONUSED}
# How far along a finished participant is; a finished status may only move up this order.
FINISHED_RANK = {S.COMPLETED: 0, S.SUBMITTED: 1, S.CREDITED: 2, S.BONUSED: 3}

EXPECTED: dict[int | None, set[Status]] = {
    None: {S.ALLOCATED},  # no row yet: /exp creates it
    S.NOT_ACCEPTED: {S.ALLOCATED},
    S.ALLOCATED: {S.STARTED, S.COMPLETED, S.QUITEARLY, S.CREDITED},
    S.STARTED: {S.COMPLETED, S.QUITEARLY, S.CREDITED},
    # psiturk.js reports "quitter" from beforeunload even when the participant stays.
    S.QUITEARLY: {S.STARTED, S.COMPLETED, S.CREDITED},
    S.COMPLETED: {S.SUBMITTED, S.CREDITED, S.BONUSED},
    S.SUBMITTED: {S.CREDITED, S.BONUSED},
    S.CREDITED: {S.BONUSED},
    S.BONUSED: set(),
}

PAIRS = [(old, new) for old in EXPECTED for new in Status]


def _name(value: Any) -> str:
    return "none" if value is None else Status(value).name.lower()


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{_name(o)}-to-{_name(n)}" for o, n in PAIRS])
def test_transition_table_pair(old: int | None, new: Status) -> None:
    assert can_transition(old, new) is (new in EXPECTED[old])


def test_expected_table_covers_every_status() -> None:
    assert set(EXPECTED) - {None} == set(Status)
    assert set(ALLOWED) == set(Status)


@pytest.mark.parametrize("finished", sorted(FINISHED))
def test_finished_participant_is_never_demoted(finished: Status) -> None:
    for new in Status:
        if new in FINISHED and FINISHED_RANK[new] > FINISHED_RANK[finished]:
            continue
        assert not can_transition(finished, new), f"{finished.name} -> {new.name} must be refused"


def test_completed_statuses_are_psiturks_completed_set() -> None:
    assert {int(s) for s in COMPLETED_STATUSES} == {3, 4, 5, 7}


def test_status_numbers_are_psiturks() -> None:
    assert [(s.name, int(s)) for s in Status] == [
        ("NOT_ACCEPTED", 0), ("ALLOCATED", 1), ("STARTED", 2), ("COMPLETED", 3),
        ("SUBMITTED", 4), ("CREDITED", 5), ("QUITEARLY", 6), ("BONUSED", 7)]


@pytest.mark.parametrize("stored", [-1, 8, 42])
def test_status_outside_psiturks_range_is_never_overwritten(stored: int) -> None:
    # A row some other tool left in an unknown state is refused, not a crash (500).
    for new in Status:
        assert can_transition(stored, new) is False


# --- transition(): what it writes ---------------------------------------------------------


class _Session:
    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, obj: Any) -> None:
        self.added.append(obj)


class _Transition(SimpleNamespace):
    pass


MODELS = SimpleNamespace(StatusTransition=_Transition)


def _participant(status: int | None) -> Any:
    return SimpleNamespace(status=status, uniqueid="W1:A1", __tablename__="assignments")


def test_transition_changes_status_and_records_one_row() -> None:
    session, clock, p = _Session(), ManualClock(), _participant(int(S.STARTED))
    outcome = transition(session, MODELS, p, S.COMPLETED, reason="complete", clock=clock)  # type: ignore[arg-type]
    assert outcome is Outcome.CHANGED
    assert p.status == 3
    assert len(session.added) == 1
    recorded = session.added[0]
    assert (recorded.old_status, recorded.new_status, recorded.reason) == (2, 3, "complete")
    assert recorded.at == clock.now()
    assert (recorded.table_name, recorded.uniqueid) == ("assignments", "W1:A1")


def test_transition_to_same_status_is_unchanged_and_records_nothing() -> None:
    session, p = _Session(), _participant(int(S.COMPLETED))
    outcome = transition(session, MODELS, p, S.COMPLETED, reason="complete", clock=ManualClock())  # type: ignore[arg-type]
    assert outcome is Outcome.UNCHANGED
    assert p.status == 3
    assert session.added == []


def test_refused_transition_leaves_status_and_records_nothing() -> None:
    session, p = _Session(), _participant(int(S.CREDITED))
    outcome = transition(session, MODELS, p, S.COMPLETED, reason="complete", clock=ManualClock())  # type: ignore[arg-type]
    assert outcome is Outcome.REFUSED
    assert p.status == 5
    assert session.added == []


@given(st.lists(st.sampled_from(list(Status)), max_size=30))
def test_any_sequence_of_requests_keeps_finished_participants_finished(requests: list[Status]) -> None:
    session, p = _Session(), _participant(int(S.ALLOCATED))
    history = [S.ALLOCATED]
    for new in requests:
        before = Status(p.status)
        outcome = transition(session, MODELS, p, new, reason="test", clock=ManualClock())  # type: ignore[arg-type]
        after = Status(p.status)
        if outcome is Outcome.CHANGED:
            assert new in EXPECTED[before]
            assert after == new
        else:
            assert after == before
        if before in FINISHED:
            assert after in FINISHED
            assert FINISHED_RANK[after] >= FINISHED_RANK[before]
        history.append(after)
    # One recorded row per actual change, never more.
    assert len(session.added) == sum(1 for a, b in zip(history, history[1:], strict=False) if a != b)
