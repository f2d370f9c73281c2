"""The pure part of counterbalancing: which cell of the condition grid comes next."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.experiment.counterbalance import choose, grid


def test_grid_lists_every_condition_and_counterbalance_pair_in_order() -> None:
    assert grid(2, 3) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert grid(1, 1) == [(0, 0)]


def test_choose_picks_the_only_least_filled_cell() -> None:
    cells = grid(3, 1)
    counts = {(0, 0): 4, (1, 0): 2, (2, 0): 3}
    for seed in range(20):
        assert choose(cells, counts, random.Random(seed)) == (1, 0)


def test_choose_treats_an_uncounted_cell_as_empty() -> None:
    cells = grid(2, 2)
    counts = {(0, 0): 1, (0, 1): 1, (1, 0): 1}
    assert choose(cells, counts, random.Random(0)) == (1, 1)


def test_choose_ignores_counts_for_cells_outside_the_grid() -> None:
    # Rows from an earlier design (e.g. num_conds was 4) must not skew the current grid.
    cells = grid(2, 1)
    counts = {(0, 0): 5, (1, 0): 5, (3, 0): 0, (0, 7): 0}
    seen = {choose(cells, counts, random.Random(seed)) for seed in range(40)}
    assert seen == {(0, 0), (1, 0)}


def test_choose_spreads_ties_uniformly() -> None:
    cells = grid(3, 1)
    rng = random.Random(1234)
    tally = Counter(choose(cells, {}, rng) for _ in range(3000))
    assert set(tally) == set(cells)
    for cell in cells:
        assert 850 <= tally[cell] <= 1150, tally


def test_choose_is_reproducible_with_a_seeded_rng() -> None:
    cells = grid(4, 2)
    first = [choose(cells, {}, random.Random(7)) for _ in range(5)]
    again = [choose(cells, {}, random.Random(7)) for _ in range(5)]
    assert first == again


def test_filling_one_cell_at_a_time_balances_the_grid() -> None:
    cells = grid(3, 2)
    counts: Counter[tuple[int, int]] = Counter()
    rng = random.Random(99)
    for _ in range(60):
        counts[choose(cells, counts, rng)] += 1
    assert set(counts.values()) == {10}


@given(
    num_conds=st.integers(1, 5),
    num_counters=st.integers(1, 4),
    counts=st.dictionaries(st.tuples(st.integers(0, 6), st.integers(0, 6)), st.integers(0, 50)),
    seed=st.integers(0, 2**32),
)
def test_choice_is_always_a_least_filled_grid_cell(num_conds: int, num_counters: int,
                                                   counts: dict[tuple[int, int], int], seed: int) -> None:
    cells = grid(num_conds, num_counters)
    chosen = choose(cells, counts, random.Random(seed))
    assert chosen in cells
    assert counts.get(chosen, 0) == min(counts.get(c, 0) for c in cells)


@pytest.mark.parametrize("cells", [[(0, 0)], grid(1, 1)])
def test_single_cell_grid_always_gives_that_cell(cells: list[tuple[int, int]]) -> None:
    assert choose(cells, {(0, 0): 1000}, random.Random(0)) == (0, 0)
