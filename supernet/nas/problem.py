"""The pymoo problem over a space's integer encoding: archs scored by exact costs and (predicted or
real) measured metrics, and NSGA-II on it."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.problem import Problem
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from ..core.arch import Arch
from ..core.space import SearchSpace
from .operators import variation
from .plan import SearchPlan, cost_or_inf


# -- scoring and the pymoo problem ---------------------------------------------------
class Scorer:
    """Values of the plan's metrics for archs, memoised in ``memo[arch] = (values, uncertainty)``.

    Cost metrics come from their exact functions; measured metrics from ``known`` (real
    results) where present, else from ``measure(archs) -> [(values, uncertainty), ...]``
    (predictions, or real evaluations in plain NSGA-II).
    """

    def __init__(self, plan: SearchPlan, known: Mapping[Arch, Mapping[str, float]], measure):
        self.plan, self.known, self.measure = plan, known, measure
        self.memo: dict[Arch, tuple[dict, float]] = {}

    def __call__(self, archs: Sequence[Arch]) -> list[tuple[dict, float]]:
        memo, known, plan = self.memo, self.known, self.plan
        todo = list(dict.fromkeys(a for a in archs if a not in memo))
        unknown = [a for a in todo if a not in known]
        measured = dict(zip(unknown, self.measure(unknown))) if unknown else {}
        blank = {n: math.nan for n in plan.measured}
        exact = [n for n in plan.used if n in plan.costs]
        for arch in todo:
            if arch in known:
                values, spread = {n: known[arch].get(n, math.nan) for n in blank}, 0.0
            else:
                values, spread = measured.get(arch, ({}, 0.0))
            values = {**blank, **values}
            costs = cost_or_inf(plan, arch)  # an invalid cost: inf, so it never looks good
            for n in exact:
                values[n] = float(costs[n])
            memo[arch] = (values, float(spread))
        return [memo[a] for a in archs]


class Decoder:
    """``space.canonical(space.decode(x))`` memoised by the canonical encoding; ``canonical(X)`` = re-encoded rows.

    Where the space's canonical rule is its declared depth gating, canonical encodings are computed
    for a whole population in one array pass (:meth:`SearchSpace.inactive_codes`) and an arch is
    built once per distinct canonical encoding; otherwise each new row is decoded and re-encoded.
    """

    def __init__(self, space: SearchSpace):
        self.space, self._memo, self._codes = space, {}, {}
        self._upper = space.bounds()[1]
        self._fast = space.inactive_codes(np.zeros((1, space.n_var), dtype=np.int64)) is not None

    def _rows(self, X) -> np.ndarray:
        X = np.clip(np.rint(np.asarray(X, dtype=float)), 0, self._upper).astype(np.int64)
        if self._fast:
            X[self.space.inactive_codes(X)] = 0
        return X

    def __call__(self, x) -> Arch:
        return self.many(np.asarray(x)[None, :])[0]

    def many(self, X) -> list[Arch]:
        """The canonical arch of every row of ``X`` (new canonical rows built in one array pass when fast)."""
        rows = self._rows(X)
        keys = [row.tobytes() for row in rows]
        new = {k: i for i, k in enumerate(keys) if k not in self._memo}
        if new and self._fast:
            built = self._build(rows[list(new.values())])
            self._memo.update(zip(new, built))
        for key, i in new.items():
            if key not in self._memo:
                self._memo[key] = self.space.canonical(self.space.decode(rows[i]))
        return [self._memo[k] for k in keys]

    def _build(self, rows: np.ndarray) -> list[Arch]:
        """``space.canonical(space.decode(row))`` of canonical rows (inactive positions zeroed) of a space whose
        canonical rule is its declared gating: each dimension's values looked up for all rows at once."""
        space, inactive = self.space, self.space.inactive_codes(rows)
        columns, at = {}, 0
        for d in space.dimensions:
            table = np.empty(len(d.choices) + 1, dtype=object)
            table[:-1], table[-1] = d.choices, d.inactive_value
            codes = np.where(inactive[:, at:at + d.positions], len(d.choices), rows[:, at:at + d.positions])
            values = table[codes].tolist()
            columns[d.name] = [v[0] for v in values] if d.length is None else [tuple(v) for v in values]
            at += d.positions
        names = sorted(columns)
        return [space.remember(Arch.from_items(tuple(zip(names, row))))
                for row in zip(*(columns[n] for n in names))]

    def canonical(self, X: np.ndarray) -> np.ndarray:
        if self._fast:
            return self._rows(X).astype(float).reshape(len(X), self.space.n_var)
        rows = []
        for x in X:
            key = np.asarray(x).round().astype(np.int64).tobytes()
            if key not in self._codes:
                self._codes[key] = self.space.encode(self(x))
            rows.append(self._codes[key])
        return np.array(rows, dtype=float).reshape(len(X), self.space.n_var)


class SearchProblem(Problem):
    """pymoo problem over the space's integer encoding: ``F`` objectives (min form), ``G`` budgets."""

    def __init__(self, plan: SearchPlan, scorer: Scorer, decoder: Decoder):
        xl, xu = plan.space.bounds()
        super().__init__(n_var=plan.space.n_var, n_obj=len(plan.objectives), n_ieq_constr=len(plan.budgets),
                         xl=xl, xu=xu, vtype=int)
        self.plan, self.scorer, self.decoder = plan, scorer, decoder

    def _evaluate(self, X, out, *args, **kwargs):
        rows = [values for values, _ in self.scorer(self.decoder.many(X))]
        with np.errstate(invalid="ignore"):  # inf - inf of an invalid cost: NaN, penalised below
            out["F"] = _penalised(self.plan.objective_matrix(rows))  # failed / invalid: never preferred
            if self.plan.budgets:
                out["G"] = _penalised(self.plan.constraint_matrix(rows))


def _penalised(A: np.ndarray) -> np.ndarray:
    """NaN and infinities -> 1e300, a finite 'worst' value pymoo can sort."""
    return np.nan_to_num(np.asarray(A, dtype=float), nan=1e300, posinf=1e300, neginf=1e300)


class CanonicalDuplicates(DuplicateElimination):
    """Duplicates are rows of the same canonical arch: what pymoo's default finds by pairwise distances of the
    canonical encodings (a row equal to an earlier row, or to a row of ``other``), found by hashing them. Each
    individual keeps its key beside the ``X`` it was computed from, as pymoo's mating compares the same
    individuals again and again; a new ``X`` (mutation sets one) gets a new key."""

    KEY = "canonical_key"

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def keys(self, pop) -> list[bytes]:
        out, todo = [], []
        for i, ind in enumerate(pop):
            held = ind.data.get(self.KEY)
            out.append(held[1] if held is not None and held[0] is ind.X else None)
            if out[-1] is None:
                todo.append(ind)
        if todo:
            rows = self.decoder.canonical(np.array([ind.X for ind in todo])).astype(np.int64)
            fresh = iter(row.tobytes() for row in rows)
            for ind in todo:
                ind.data[self.KEY] = (ind.X, next(fresh))
            out = [ind.data[self.KEY][1] for ind in pop]
        return out

    def _do(self, pop, other, is_duplicate):
        keys = self.keys(pop)
        seen = set() if other is None else set(self.keys(other))
        for i, key in enumerate(keys):
            if key in seen:
                is_duplicate[i] = True
            elif other is None:
                seen.add(key)
        return is_duplicate


def make_nsga2(decoder: Decoder, pop_size: int, sampling) -> NSGA2:
    """NSGA-II on the integer encoding, with operators by dimension kind (:func:`~supernet.nas.operators.variation`:
    SBX / PM with rounding on ordered positions, uniform crossover / random reset on categorical
    ones); duplicates are the same canonical arch."""
    crossover, mutation = variation(decoder.space)
    return NSGA2(pop_size=pop_size, sampling=sampling, crossover=crossover, mutation=mutation,
                 eliminate_duplicates=CanonicalDuplicates(decoder))


def initial_population(problem: SearchProblem, elites: Sequence[Arch], size: int, rng: np.random.Generator) -> np.ndarray:
    """Encodings of ``elites`` (at most half of ``size``) topped up by integer random sampling."""
    rows = [problem.plan.space.encode(a) for a in list(elites)[:size // 2]]
    fill = IntegerRandomSampling()._do(problem, size - len(rows), random_state=rng)
    return np.vstack([np.array(rows, dtype=int).reshape(len(rows), problem.n_var), fill]).astype(int)
