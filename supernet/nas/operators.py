"""NSGA-II's variation operators on a space's integer encoding, by each dimension's kind.

An ``ordered`` position (widths, kernel sizes, depths) has a meaningful distance between choice
indices, so it gets simulated binary crossover and polynomial mutation on floats, rounded back to
integers (the usual integer NSGA-II). A ``categorical`` position (operations) does not: choice 1
is no nearer to choice 2 than to choice 4, so it gets uniform crossover (each child takes the
position from either parent with probability 1/2) and random reset (a mutated position takes one
of the *other* choices, uniformly). A space without categorical positions gets exactly the plain
SBX / PM operators, draw for draw.
"""
from __future__ import annotations

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair

from ..core.space import SearchSpace

ETA = 3.0  # SBX / PM distribution index: low, so offspring spread over the few choices of a position
CROSSOVER_PROB = 0.9  # share of matings that cross over
MUTATION_PROB = 0.9  # share of offspring that mutate; each position then with probability min(0.5, 1 / n_var)


def categorical_positions(space: SearchSpace) -> np.ndarray:
    """Boolean mask over the encoding's ``n_var`` positions: True where the dimension is categorical."""
    return np.array([d.kind == "categorical" for d in space.dimensions for _ in range(d.positions)], dtype=bool)


def variation(space: SearchSpace) -> tuple:
    """``(crossover, mutation)`` for NSGA-II or a GA over ``space``'s encoding (see the module doc)."""
    mask = categorical_positions(space)
    if not mask.any():
        return (SBX(prob=CROSSOVER_PROB, eta=ETA, vtype=float, repair=RoundingRepair()),
                PM(prob=MUTATION_PROB, eta=ETA, vtype=float, repair=RoundingRepair()))
    return (KindCrossover(mask, prob=CROSSOVER_PROB, vtype=float, repair=RoundingRepair()),
            KindMutation(mask, prob=MUTATION_PROB, vtype=float, repair=RoundingRepair()))


class KindCrossover(Crossover):
    """Two parents, two children: SBX on the ordered positions, uniform crossover on ``categorical``."""

    def __init__(self, categorical: np.ndarray, **kwargs):
        super().__init__(2, 2, **kwargs)
        self.categorical, self.sbx = categorical, SBX(eta=ETA)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        Q = self.sbx._do(problem, X, random_state=random_state)  # (2, matings, n_var) floats
        cat = self.categorical
        parents = X[:, :, cat].astype(float)  # (2, matings, n_categorical)
        swap = random_state.random(parents.shape[1:]) < 0.5
        Q[0][:, cat] = np.where(swap, parents[1], parents[0])
        Q[1][:, cat] = np.where(swap, parents[0], parents[1])
        return Q


class KindMutation(Mutation):
    """Polynomial mutation on the ordered positions; random reset on ``categorical`` ones, each with
    probability ``min(0.5, 1 / n_var)`` (PM's own rate), to one of the position's other choices."""

    def __init__(self, categorical: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.categorical, self.pm = categorical, PM(eta=ETA)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        Xp = self.pm._do(problem, X, random_state=random_state)  # (n, n_var) floats
        cat = self.categorical
        values = np.rint(X[:, cat]).astype(np.int64)  # (n, n_categorical) choice indices
        low = np.asarray(problem.xl)[cat].astype(np.int64)
        size = np.asarray(problem.xu)[cat].astype(np.int64) - low + 1
        reset = (random_state.random(values.shape) < self.get_prob_var(problem)) & (size > 1)
        other = (values - low + 1 + random_state.integers(0, np.maximum(size - 1, 1), size=values.shape)) % size + low
        Xp[:, cat] = np.where(reset, other, values)
        return Xp
