"""How many archs a round evaluates, and when an automatic predictor chooses its model again.

Rounds grow with the real evaluations done (``done``)::

    size = max(per_round, floor(g * done))      g = growth, or fast_growth once evaluations are cheap

Evaluations are *cheap* when the thinking of a guided round (predictor fit, NSGA-II, choice),
``t_think`` seconds, would pay for more than ``CHEAP_RATIO`` rounds of ``per_round`` real
evaluations of ``t_eval`` seconds each::

    cheap  <=>  t_think > CHEAP_RATIO * per_round * t_eval

A table oracle (microseconds an arch) is cheap, so its rounds double and a search of ``N`` calls
thinks ``O(log2 N)`` times; a real subnet evaluation (tens of milliseconds or more) is not, and keeps
``growth``. ``t_eval`` is measured on this run's new evaluations, ``t_think`` on its first guided
round; the decision is taken once, after that round, and saved in ``state.json``, so a resumed
search continues with the rounds it had.

In a cheap search an automatic predictor (one with a ``refit`` hook, e.g. ``auto``) chooses its
model by cross-validation only in the rounds where the ok results have grown ``RECHOOSE``-fold
since the last choice (:func:`choice_rounds`); the rounds between refit the chosen model on the new
data (no cross-validation). The choice rounds follow from the rounds' sizes alone, so a resumed
search recomputes the choice it had.
"""
from __future__ import annotations

import time
from typing import Sequence

CHEAP_RATIO = 100.0
RECHOOSE = 4.0
clock = time.perf_counter  # the seconds the pace measures (a test may replace it)


def round_size(cfg, done: int, cheap: bool) -> int:
    """Archs round ``r`` evaluates given ``done`` evaluations before it (before the room left is applied)."""
    g = cfg.fast_growth if cheap else cfg.growth
    return max(cfg.per_round, int(g * done))


def is_cheap(think_s: float, eval_s: float, evaluations: int, per_round: int) -> bool | None:
    """``t_think > CHEAP_RATIO * per_round * t_eval`` with ``t_eval = eval_s / evaluations`` (None: nothing measured)."""
    if evaluations <= 0:
        return None
    return think_s > CHEAP_RATIO * per_round * eval_s / evaluations


def choice_rounds(ok_before: Sequence[int]) -> list[int]:
    """Rounds (indices into ``ok_before``, the ok results before each guided round) whose fit chooses the model:
    the first, then each one whose ok results reach ``RECHOOSE`` times those of the last choice."""
    out: list[int] = []
    for r, n in enumerate(ok_before):
        if not out or n >= RECHOOSE * ok_before[out[-1]]:
            out.append(r)
    return out
