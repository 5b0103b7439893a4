"""How many archs a round evaluates, and when an automatic predictor chooses its model again.

Rounds grow with the real evaluations done (``done``)::

    size = max(per_round, floor(g * done))      g = growth, or fast_growth once evaluations are cheap

Evaluations are *cheap* when one takes less than ``CHEAP_S`` seconds of wall time on average
(a table lookup, an analytic model: tens of microseconds; a real subnet evaluation, BN
recalibration and a validation pass, takes tens of milliseconds or more): then a round of
``per_round`` evaluations costs less than refitting the predictors and running NSGA-II once,
so rounds double (``fast_growth`` 1.0) and a search of ``N`` calls thinks ``O(log2 N)`` times;
expensive evaluations keep ``growth``. The time is measured on the first round that evaluates
something new (round 0, the baselines and random archs); the decision is taken once, then and
kept in ``state.json``, so a search resumed after round 0 continues with the rounds it had.
``SearchConfig.cheap`` (True / False) fixes it instead, e.g. for two searches that must be equal
while their evaluators run at different speeds (locally and on Ray).

A cheap round also spends ``LOCAL`` (a quarter) of its archs on the real front's neighbours (every
arch one position away from a front point, the best first objective first): a predictor cannot
tell apart archs closer than its error, real evaluations can, and they are cheap. The single-target
search evaluates them last, in ``STEPS`` batches, each around the front that the round's results so
far have moved: a hill climb within the round. NSGA-II then needs fewer generations: a cheap round
of ``n`` archs with a population of ``p`` runs ``max(MIN_GENERATIONS, ceil(WORK * n / p))`` of them
(at most ``GENERATIONS``, half, of the configured ones), so the individuals it scores grow with the
round's real evaluations (``WORK`` per evaluation) instead of costing the same for 50 archs as for 400.
(The multi-target search keeps half the generations and its neighbours beside NSGA-II's picks.)

In a cheap search an automatic predictor (one with a ``refit`` hook, e.g. ``auto``) chooses its
model by cross-validation only in the rounds where the ok results have grown ``RECHOOSE``-fold
since the last choice (:func:`choice_rounds`); the rounds between refit the chosen model on the new
data. In the single-target search the first choice waits for ``CHOOSE_AT`` ok results (a choice
cross-validates four models, about a second on a few hundred archs: more than the evaluations of a
300-call search), and the rounds before fit the predictor's ``quick`` model (``auto``: its first
candidate, ridge, with its fold models for the uncertainty; on the OFA table oracle the choice was
ridge or ridge+mlp in every round anyway). The choice rounds follow from the rounds' sizes alone, so
a resumed search makes the same choice again. A cheap round's files (``evaluations.csv``,
``pareto.json``, ``state.json``) are replaced atomically without fsync; the search's end syncs them.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

CHEAP_S = 0.005
LOCAL = 0.25  # of a cheap round, the share of real neighbours of the front (candidates.neighbours)
GENERATIONS = 0.5  # of the configured NSGA-II generations, what a cheap round runs
RECHOOSE = 4.0
STEPS = 4  # batches of a cheap round's hill climb
WORK = 5.0  # NSGA-II individuals scored per real evaluation of a cheap round (generations x population)
MIN_GENERATIONS = 5
CHOOSE_AT = 2000  # ok results before a cheap search's first model choice (quick fits before it)
clock = time.perf_counter  # the seconds the pace measures (a test may replace it)


def round_size(cfg, done: int, cheap: bool) -> int:
    """Archs round ``r`` evaluates given ``done`` evaluations before it (before the room left is applied)."""
    g = cfg.fast_growth if cheap else cfg.growth
    return max(cfg.per_round, int(g * done))


def local_share(n: int, cheap: bool | None) -> int:
    """Archs of a round of ``n`` that go to neighbours of the real front: ``floor(LOCAL * n)`` when cheap, else 0."""
    return int(LOCAL * n) if cheap else 0


def generations(cfg, cheap: bool | None, n: int | None = None, population: int = 1) -> int:
    """NSGA-II generations of a round: ``cfg.generations``; when cheap ``most = ceil(GENERATIONS *
    cfg.generations)``, or for a round of ``n`` archs that climbs (the single-target search)
    ``min(most, max(MIN_GENERATIONS, ceil(WORK * n / population)))``: the individuals NSGA-II scores grow with
    the round's real evaluations."""
    if not cheap:
        return cfg.generations
    most = max(1, math.ceil(GENERATIONS * cfg.generations))
    return most if n is None else min(most, max(MIN_GENERATIONS, math.ceil(WORK * n / max(1, population))))


def is_cheap(eval_s: float, evaluations: int) -> bool | None:
    """``eval_s / evaluations < CHEAP_S``: the mean wall seconds of an evaluation (None: nothing evaluated)."""
    if evaluations <= 0:
        return None
    return eval_s / evaluations < CHEAP_S


def choice_rounds(ok_before: Sequence[int], first: int = 0) -> list[int]:
    """Rounds (indices into ``ok_before``, the ok results before each guided round) whose fit chooses the model:
    the first with ``first`` ok results or more, then each one whose ok results reach ``RECHOOSE`` times those of
    the last choice."""
    out: list[int] = []
    for r, n in enumerate(ok_before):
        if (not out and n >= first) or (out and n >= RECHOOSE * ok_before[out[-1]]):
            out.append(r)
    return out
