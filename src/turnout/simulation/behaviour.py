"""What each simulated worker will do, decided up front from a seed.

A ``Plan`` is pure data: who the worker is (ID, browser, window), how their visit ends
(their ``Fate``), how long each step takes in simulated time, and every response they
will give. ``workers.py`` only carries a plan out, so a run is reproducible: the same
seed gives the same plans, whatever the server or the clock does.

Worker ``i`` of a run draws from its own random stream (``seed:i``), so adding workers
to a run never changes what the first ones do.

The task data follows psiTurk's example Stroop task (its ``task.js``): instruction
pages recorded by psiturk.js's instruction player, ``TEST`` trials with ``word``,
``color``, ``relation``, ``response``, ``hit`` and ``rt``, and a post-questionnaire
recorded as unstructured data between two ``postquestionnaire`` trials.
"""

from __future__ import annotations

import enum
import math
import random
import string
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fate", "Plan", "Trial", "plan_worker", "plan_workers"]


class Fate(enum.Enum):
    """How a visit ends."""

    FINISH = "finish"    # does the whole task and submits the assignment
    QUIT = "quit"        # leaves the experiment part-way (psiturk.js reports /quitter), returns the HIT
    RETURN = "return"    # reads the ad, then returns the HIT without starting
    ABANDON = "abandon"  # stops part-way with the page left open; the assignment's deadline passes


# How dropouts divide among the ways of not finishing. Quitting mid-task is the common
# case in psiTurk studies (the QUITEARLY rows a lab sees); returns and abandons are rarer.
DROPOUT_SPLIT = ((Fate.QUIT, 0.6), (Fate.RETURN, 0.25), (Fate.ABANDON, 0.15))

# psiTurk's example Stroop stimuli: word, ink colour, relation.
STIMULI = (
    ("SHIP", "red", "unrelated"), ("MONKEY", "green", "unrelated"), ("ZAMBONI", "blue", "unrelated"),
    ("RED", "red", "congruent"), ("GREEN", "green", "congruent"), ("BLUE", "blue", "congruent"),
    ("GREEN", "red", "incongruent"), ("BLUE", "green", "incongruent"), ("RED", "blue", "incongruent"),
)
COLOURS = ("red", "green", "blue")

# Desktop browsers only: psiTurk's default browser_exclude_rule turns away MSIE, mobile
# and tablet, and projects often exclude Safari.
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
)
LANGUAGES = ("en-US", "en-US", "en-US", "en-GB", "en-US,es;q=0.8", "en-IN")
WINDOWS = ((1920, 969), (1536, 735), (1440, 789), (1366, 657), (2560, 1289))

DEFAULT_TRIALS = 18
DEFAULT_INSTRUCTION_PAGES = 3
DEFAULT_SAVE_EVERY = 6
WORKER_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Trial:
    """One test trial: what psiTurk's Stroop task records, plus the pause before the next."""

    data: dict[str, Any]
    rt_ms: int
    gap_ms: int


@dataclass(frozen=True)
class Plan:
    """Everything one simulated worker will do. Times are simulated milliseconds."""

    index: int
    worker_id: str
    fate: Fate
    user_agent: str
    language: str
    window: tuple[int, int]
    ad_ms: int
    consent_ms: int
    instruction_ms: tuple[int, ...]
    trials: tuple[Trial, ...]
    # QUIT and ABANDON: test trials done before leaving; None for the others.
    stop_after: int | None
    save_every: int
    questionnaire: dict[str, str]
    questionnaire_ms: int
    # Test trials after which the worker switched to another tab for a while.
    focus_breaks: frozenset[int] = field(default_factory=frozenset)

    @property
    def finishes(self) -> bool:
        return self.fate is Fate.FINISH

    @property
    def starts_experiment(self) -> bool:
        return self.fate is not Fate.RETURN

    def trials_done(self) -> int:
        """How many test trials this worker completes."""
        if self.fate is Fate.RETURN:
            return 0
        return len(self.trials) if self.stop_after is None else self.stop_after

    def recorded_trials(self) -> int:
        """How many entries psiturk.js's ``data`` list holds at the worker's last save.

        Instruction pages record ``Begin`` plus one row per page; the questionnaire adds a
        ``begin`` and a ``submit`` row. A quitter's last save (on leaving) includes every
        trial done; an abandoner's last save is the last periodic one.
        """
        if self.fate is Fate.RETURN:
            return 0
        instructions = 1 + len(self.instruction_ms)
        if self.fate is Fate.FINISH:
            return instructions + len(self.trials) + 2
        done = self.trials_done()
        if self.fate is Fate.QUIT:
            return instructions + done
        return instructions + (done // self.save_every) * self.save_every


def worker_id_for(rng: random.Random) -> str:
    """An MTurk-looking worker ID (``A`` then 13 of ``[A-Z0-9]``, like ``A2YUCJ28XANFOX``)."""
    return "A" + "".join(rng.choice(WORKER_ID_ALPHABET) for _ in range(13))


def _fate(rng: random.Random, dropout: float) -> Fate:
    if rng.random() >= dropout:
        return Fate.FINISH
    pick = rng.random()
    for fate, share in DROPOUT_SPLIT:
        if pick < share:
            return fate
        pick -= share
    return DROPOUT_SPLIT[0][0]


def _seconds(rng: random.Random, low: float, high: float) -> int:
    return int(rng.uniform(low, high) * 1000)


def _trials(rng: random.Random, count: int) -> tuple[Trial, ...]:
    careless = rng.random() < 0.05  # a few click through without reading
    accuracy = rng.uniform(0.4, 0.6) if careless else rng.uniform(0.85, 0.99)
    speed = rng.uniform(0.45, 0.6) if careless else rng.uniform(0.85, 1.2)
    order = [STIMULI[i % len(STIMULI)] for i in range(count)]
    rng.shuffle(order)
    trials = []
    for word, colour, relation in order:
        slow = {"congruent": 0, "unrelated": 40, "incongruent": 95}[relation]
        rt = int(speed * (math.exp(rng.gauss(math.log(620), 0.22)) + slow))
        hit = rng.random() < accuracy
        response = colour if hit else rng.choice([c for c in COLOURS if c != colour])
        data = {"phase": "TEST", "word": word, "color": colour, "relation": relation,
                "response": response, "hit": hit, "rt": rt}
        trials.append(Trial(data=data, rt_ms=rt, gap_ms=int(rng.uniform(400, 700))))
    return tuple(trials)


def plan_worker(seed: int | str, index: int, *, dropout: float = 0.0, trials: int = DEFAULT_TRIALS,
                instruction_pages: int = DEFAULT_INSTRUCTION_PAGES,
                save_every: int = DEFAULT_SAVE_EVERY) -> Plan:
    """The plan of worker ``index`` in the run seeded ``seed``."""
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout must be between 0 and 1, got {dropout}")
    if trials < 1 or instruction_pages < 0 or save_every < 1:
        raise ValueError("trials and save_every must be at least 1, instruction_pages at least 0")
    rng = random.Random(f"turnout-simulation:{seed}:{index}")
    worker_id = worker_id_for(rng)
    fate = _fate(rng, dropout)
    test = _trials(rng, trials)
    stop_after = rng.randrange(0, trials) if fate in (Fate.QUIT, Fate.ABANDON) else None
    breaks = frozenset(i for i in range(trials) if rng.random() < 0.03)
    questionnaire = {
        "engagement": str(rng.choice([3, 4, 4, 5, 5, 6, 7])),
        "difficulty": str(rng.choice([1, 2, 2, 3, 3, 4, 5])),
        "comment": rng.choice(["", "", "", "none", "Fun task.", "The colours were easy to tell apart.",
                               "My hand got tired."]),
    }
    return Plan(
        index=index, worker_id=worker_id, fate=fate,
        user_agent=rng.choice(USER_AGENTS), language=rng.choice(LANGUAGES), window=rng.choice(WINDOWS),
        ad_ms=_seconds(rng, 4, 40), consent_ms=_seconds(rng, 8, 60),
        instruction_ms=tuple(_seconds(rng, 4, 30) for _ in range(instruction_pages)),
        trials=test, stop_after=stop_after, save_every=save_every,
        questionnaire=questionnaire, questionnaire_ms=_seconds(rng, 20, 120), focus_breaks=breaks,
    )


def plan_workers(seed: int | str, count: int, *, first: int = 0, **options: Any) -> list[Plan]:
    """Plans for workers ``first`` .. ``first + count - 1`` of the run seeded ``seed``."""
    return [plan_worker(seed, i, **options) for i in range(first, first + count)]
