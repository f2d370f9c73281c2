"""What each simulated worker will do, decided up front from a seed.

A ``Plan`` is pure data: who the worker is (ID, browser, window), how their visit ends
(their ``Fate``), how long each step takes in simulated time, and every response they
will give. ``workers.py`` only carries a plan out, so a run is reproducible: the same
seed gives the same plans, whatever the server or the clock does.

Worker ``i`` of a run draws from its own random stream (``seed:i``), so adding workers
to a run never changes what the first ones do.

The task data has the shape of the Stroop task ``turnout init`` creates (itself a
superset of psiTurk's example task): rows from psiturk.js's instruction player, a
``PRACTICE`` block and a ``TEST`` block whose trials carry ``word``, ``color``,
``relation``, ``response``, ``hit`` and ``rt`` like psiTurk's example (plus ``block``,
``trial``, ``key`` and ``correct``), and a post-questionnaire recorded as unstructured
data after ``postquestionnaire`` begin/submit rows. The test block's share of congruent
words depends on the participant's condition, which only the server knows, so a plan
makes its trials per condition (deterministically).
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

# The template task's colours and keys (psiTurk's example used red, green and blue).
COLOURS = ("red", "green", "blue", "yellow")
KEYS = {"red": "r", "green": "g", "blue": "b", "yellow": "y"}
# Share of congruent test words per condition (the template's task.js); unknown
# conditions use the first.
CONGRUENT_SHARE = (0.5, 0.25)
PRACTICE_SHARE = 0.5
FIXATION_MS = 500
FEEDBACK_MS = 800
GAP_MS = 250

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

DEFAULT_PRACTICE = 8
DEFAULT_TRIALS = 24
DEFAULT_INSTRUCTION_PAGES = 4
DEFAULT_SAVE_EVERY = 8
WORKER_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Trial:
    """One trial as the task records it, plus how long it took and the pause after it."""

    data: dict[str, Any]
    rt_ms: int
    gap_ms: int


@dataclass(frozen=True)
class Skill:
    """How a worker responds: accuracy, speed, and the Stroop slowdown for mismatches."""

    accuracy: float
    speed: float
    interference_ms: int


@dataclass(frozen=True)
class Plan:
    """Everything one simulated worker will do. Times are simulated milliseconds."""

    seed: str
    index: int
    worker_id: str
    fate: Fate
    user_agent: str
    language: str
    window: tuple[int, int]
    ad_ms: int
    consent_ms: int
    instruction_ms: tuple[int, ...]
    practice: int
    test: int
    skill: Skill
    # QUIT and ABANDON: trials (practice and test together) done before leaving.
    stop_after: int | None
    save_every: int
    questionnaire: dict[str, str]
    questionnaire_ms: int
    # Trials after which the worker switched to another tab for a while.
    focus_breaks: frozenset[int] = field(default_factory=frozenset)

    @property
    def finishes(self) -> bool:
        return self.fate is Fate.FINISH

    @property
    def total_trials(self) -> int:
        return self.practice + self.test

    def trials(self, condition: int = 0) -> tuple[Trial, ...]:
        """The practice then test trials this worker gives in ``condition`` (deterministic)."""
        rng = random.Random(f"{self.seed}:trials:{condition}")
        share = CONGRUENT_SHARE[condition] if 0 <= condition < len(CONGRUENT_SHARE) else CONGRUENT_SHARE[0]
        practice = _block(rng, self.skill, "practice", "PRACTICE", self.practice, PRACTICE_SHARE,
                          FEEDBACK_MS + FIXATION_MS)
        test = _block(rng, self.skill, "test", "TEST", self.test, share, GAP_MS + FIXATION_MS)
        return practice + test

    def trials_done(self) -> int:
        """How many trials this worker completes."""
        if self.fate is Fate.RETURN:
            return 0
        return self.total_trials if self.stop_after is None else self.stop_after

    @property
    def instruction_rows(self) -> int:
        """psiturk.js's instruction player records ``Begin`` and one row per page."""
        return 1 + len(self.instruction_ms)

    def saves_after(self) -> list[int]:
        """Trial counts after which the task saves: the end of practice, every
        ``save_every`` test trials, the end of the test (the template's checkpoints plus
        periodic ones)."""
        points = {self.practice} if self.practice else set()
        points.update(self.practice + k for k in range(self.save_every, self.test, self.save_every))
        points.add(self.total_trials)
        return sorted(points)

    def recorded_trials(self) -> int:
        """How many rows psiturk.js's ``data`` list holds at the worker's last save.

        A finisher's last save follows the questionnaire (``begin`` and ``submit`` rows);
        a quitter's, on leaving the page, includes every trial done; an abandoner's last
        save is the last checkpoint reached (or the one when the instructions ended).
        """
        if self.fate is Fate.RETURN:
            return 0
        if self.fate is Fate.FINISH:
            return self.instruction_rows + self.total_trials + 2
        done = self.trials_done()
        if self.fate is Fate.QUIT:
            return self.instruction_rows + done
        return self.instruction_rows + max([0] + [p for p in self.saves_after() if p <= done])


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


def _words(rng: random.Random, count: int, share: float) -> list[tuple[str, str, str]]:
    """Some words in their own ink, the rest cycling through every word/ink mismatch."""
    congruent = round(count * share)
    colours = list(COLOURS)
    rng.shuffle(colours)
    words = [(colours[i % len(colours)].upper(), colours[i % len(colours)], "congruent") for i in range(congruent)]
    mismatches = [(word.upper(), ink, "incongruent") for word in COLOURS for ink in COLOURS if word != ink]
    rng.shuffle(mismatches)
    words += [mismatches[i % len(mismatches)] for i in range(count - congruent)]
    rng.shuffle(words)
    return words


def _block(rng: random.Random, skill: Skill, name: str, phase: str, count: int, share: float,
           gap_ms: int) -> tuple[Trial, ...]:
    trials = []
    for number, (word, colour, relation) in enumerate(_words(rng, count, share), start=1):
        slow = skill.interference_ms if relation == "incongruent" else 0
        rt = max(150, int(skill.speed * (math.exp(rng.gauss(math.log(640), 0.22)) + slow)))
        hit = rng.random() < skill.accuracy
        response = colour if hit else rng.choice([c for c in COLOURS if c != colour])
        data = {"phase": phase, "block": name, "trial": number, "word": word, "color": colour,
                "relation": relation, "key": KEYS[response], "response": response, "hit": hit, "correct": hit,
                "rt": rt}
        trials.append(Trial(data=data, rt_ms=rt, gap_ms=gap_ms))
    return tuple(trials)


def plan_worker(seed: int | str, index: int, *, dropout: float = 0.0, trials: int = DEFAULT_TRIALS,
                practice: int = DEFAULT_PRACTICE, instruction_pages: int = DEFAULT_INSTRUCTION_PAGES,
                save_every: int = DEFAULT_SAVE_EVERY) -> Plan:
    """The plan of worker ``index`` in the run seeded ``seed``."""
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout must be between 0 and 1, got {dropout}")
    if trials < 1 or practice < 0 or instruction_pages < 0 or save_every < 1:
        raise ValueError("trials and save_every must be at least 1, practice and instruction_pages at least 0")
    key = f"turnout-simulation:{seed}:{index}"
    rng = random.Random(key)
    worker_id = worker_id_for(rng)
    fate = _fate(rng, dropout)
    careless = rng.random() < 0.05  # a few click through without reading
    skill = Skill(accuracy=rng.uniform(0.3, 0.5) if careless else rng.uniform(0.86, 0.99),
                  speed=rng.uniform(0.45, 0.6) if careless else rng.uniform(0.85, 1.25),
                  interference_ms=int(rng.uniform(40, 140)))
    total = practice + trials
    stop_after = rng.randrange(0, total) if fate in (Fate.QUIT, Fate.ABANDON) else None
    breaks = frozenset(i for i in range(total) if rng.random() < 0.02)
    questionnaire = {
        "engagement": str(rng.choice([3, 4, 4, 5, 5, 6, 7])),
        "difficulty": str(rng.choice([1, 2, 2, 3, 3, 4, 5])),
        "colourvision": rng.choice(["no"] * 12 + ["unsure", "yes"]),
        "strategy": rng.choice(["", "", "", "none", "I focused on the ink, not the word.",
                                "Looked at the first letter's colour.", "Blurred my eyes a bit."]),
    }
    return Plan(
        seed=key, index=index, worker_id=worker_id, fate=fate,
        user_agent=rng.choice(USER_AGENTS), language=rng.choice(LANGUAGES), window=rng.choice(WINDOWS),
        ad_ms=_seconds(rng, 4, 40), consent_ms=_seconds(rng, 8, 60),
        instruction_ms=tuple(_seconds(rng, 4, 30) for _ in range(instruction_pages)),
        practice=practice, test=trials, skill=skill, stop_after=stop_after, save_every=save_every,
        questionnaire=questionnaire, questionnaire_ms=_seconds(rng, 20, 120), focus_breaks=breaks,
    )


def plan_workers(seed: int | str, count: int, *, first: int = 0, **options: Any) -> list[Plan]:
    """Plans for workers ``first`` .. ``first + count - 1`` of the run seeded ``seed``."""
    return [plan_worker(seed, i, **options) for i in range(first, first + count)]
