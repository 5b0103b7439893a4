"""The search problem: metrics, budgets, the pymoo problem, NSGA-II and Pareto fronts.

A :class:`SearchPlan` says what is searched: objectives by name (``accuracy`` maximised;
``flops``, ``params``, ``latency`` minimised) and budgets (``value <= max``). A metric with
a cost function (``plan.costs``) is exact and never predicted; every other metric used is
*measured* by the evaluator and predicted during NSGA-II. Everything here works in
minimisation form: ``F = -value`` for a maximised metric, ``F = value`` otherwise, and a
budget is the inequality ``G = value / max - 1 <= 0``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from .arch import Arch, SearchSpace
from .errors import SupernetError


# -- quantities ----------------------------------------------------------------------
_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_quantity(text: str | float, what: str = "value") -> float:
    """``"20M" -> 2e7``: a positive finite number with an optional K, M or G suffix (x1e3, 1e6, 1e9)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
        if not match:
            raise SupernetError(f"{what}: cannot read {text!r} as a number; use digits with an optional "
                                "K, M or G suffix, e.g. 20M or 1.5G")
        value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise SupernetError(f"{what} must be a positive finite number, got {text!r}")
    return value


def format_quantity(value: float) -> str:
    """``20000000 -> "20M"``, ``1520000 -> "1.52M"``, ``0.93 -> "0.93"`` (3 significant digits)."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


# -- metrics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A searchable quantity; ``unavailable`` (a message) blocks its use until it exists."""

    name: str
    maximise: bool
    label: str
    unavailable: str | None = None


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> None:
    """Add or replace a metric (e.g. a latency metric once latency tables exist)."""
    METRICS[metric.name] = metric


for _metric in (Metric("accuracy", True, "accuracy"), Metric("flops", False, "FLOPs (MACs)"),
                Metric("params", False, "parameters"), Metric("latency", False, "latency (ms)")):
    register_metric(_metric)


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise SupernetError(f"unknown metric {name!r}; known metrics are {sorted(METRICS)}")
    metric = METRICS[name]
    if metric.unavailable:
        raise SupernetError(metric.unavailable)
    return metric


# -- the plan ------------------------------------------------------------------------
@dataclass
class SearchPlan:
    """Objectives, budgets and exact cost functions over one search space."""

    space: SearchSpace
    objectives: tuple[Metric, ...]
    budgets: dict[str, float]
    costs: dict[str, Callable[[Arch], float]] = field(default_factory=dict)

    @property
    def used(self) -> list[str]:
        """Names of the objectives, then of budget-only metrics."""
        names = [m.name for m in self.objectives]
        return names + [n for n in self.budgets if n not in names]

    @property
    def measured(self) -> list[str]:
        """Metrics the evaluator must return (and the predictors learn): used and without a cost function."""
        return [n for n in self.used if n not in self.costs]

    def objective_row(self, values: Mapping[str, float]) -> np.ndarray:
        return np.array([-values[m.name] if m.maximise else values[m.name] for m in self.objectives], dtype=float)

    def objective_matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.array([self.objective_row(v) for v in rows], dtype=float).reshape(len(rows), len(self.objectives))

    def constraint_row(self, values: Mapping[str, float]) -> np.ndarray:
        return np.array([values[n] / b - 1.0 for n, b in self.budgets.items()], dtype=float)

    def feasible(self, values: Mapping[str, float]) -> bool:
        return all(values[n] <= b for n, b in self.budgets.items())

    def cost_feasible(self, arch: Arch) -> bool:
        """Meets every budget that has an exact cost function (the others cannot be checked cheaply)."""
        return all(self.costs[n](arch) <= b for n, b in self.budgets.items() if n in self.costs)


def make_plan(space: SearchSpace, objectives: Sequence[str], budgets: Mapping[str, float],
              costs: Mapping[str, Callable[[Arch], float]] | None = None) -> SearchPlan:
    """Validate names and budgets; raise :class:`SupernetError` with the fix."""
    objectives = list(objectives)
    if len(objectives) < 2 or len(set(objectives)) != len(objectives):
        raise SupernetError(f"objectives must be at least 2 distinct metric names, e.g. accuracy,flops; got {objectives}")
    metrics = tuple(get_metric(n) for n in objectives)
    checked = {}
    for name, value in budgets.items():
        if get_metric(name).maximise:
            raise SupernetError(f"{name} cannot take a budget: budgets are maxima on costs, and {name} is maximised")
        checked[name] = parse_quantity(value, f"budget on {name}")
    return SearchPlan(space, metrics, checked, dict(costs or {}))


def check_reachable(plan: SearchPlan, rng: np.random.Generator, probes: int = 256) -> None:
    """Raise at once unless some arch meets every budget that has a cost function.

    Probes the smallest and median archs and ``probes`` random ones; the message names the
    smallest reachable value of each metric among them (the smallest arch's in a monotone space).
    """
    limited = {n: b for n, b in plan.budgets.items() if n in plan.costs}
    if not limited:
        return
    archs = [plan.space.smallest(), plan.space.median()] + [plan.space.sample(rng) for _ in range(probes)]
    if any(plan.cost_feasible(a) for a in archs):
        return
    lowest = {n: min(plan.costs[n](a) for a in archs) for n in limited}
    for name, budget in limited.items():
        if lowest[name] > budget:
            raise SupernetError(f"no arch meets the {name} budget {format_quantity(budget)}: the smallest reachable "
                                f"{name} is {format_quantity(lowest[name])}; raise --max-{name} to at least that")
    small = ", ".join(f"{n} {format_quantity(plan.costs[n](archs[0]))}" for n in limited)
    raise SupernetError(f"no arch meets all budgets together ({', '.join(f'{n} <= {format_quantity(b)}' for n, b in limited.items())}); "
                        f"the smallest arch has {small}; relax one of them")


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
        todo = list(dict.fromkeys(a for a in archs if a not in self.memo))
        unknown = [a for a in todo if a not in self.known]
        measured = dict(zip(unknown, self.measure(unknown))) if unknown else {}
        for arch in todo:
            if arch in self.known:
                values, spread = {n: self.known[arch][n] for n in self.plan.measured}, 0.0
            else:
                values, spread = measured.get(arch, ({}, 0.0))
            values = dict(values)
            values.update({n: float(self.plan.costs[n](arch)) for n in self.plan.used if n in self.plan.costs})
            self.memo[arch] = (values, float(spread))
        return [self.memo[a] for a in archs]


class Decoder:
    """``space.decode`` memoised by the rounded encoding; ``canonical(X)`` = re-encoded decoded rows."""

    def __init__(self, space: SearchSpace):
        self.space, self._memo = space, {}

    def __call__(self, x) -> Arch:
        key = np.asarray(x).round().astype(np.int64).tobytes()
        if key not in self._memo:
            self._memo[key] = self.space.decode(x)
        return self._memo[key]

    def canonical(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.space.encode(self(x)) for x in X], dtype=float).reshape(len(X), self.space.n_var)


class SearchProblem(Problem):
    """pymoo problem over the space's integer encoding: ``F`` objectives (min form), ``G`` budgets."""

    def __init__(self, plan: SearchPlan, scorer: Scorer, decoder: Decoder):
        xl, xu = plan.space.bounds()
        super().__init__(n_var=plan.space.n_var, n_obj=len(plan.objectives), n_ieq_constr=len(plan.budgets),
                         xl=xl, xu=xu, vtype=int)
        self.plan, self.scorer, self.decoder = plan, scorer, decoder

    def _evaluate(self, X, out, *args, **kwargs):
        rows = [values for values, _ in self.scorer([self.decoder(x) for x in X])]
        out["F"] = self.plan.objective_matrix(rows)
        if self.plan.budgets:
            out["G"] = np.array([self.plan.constraint_row(v) for v in rows], dtype=float)


def make_nsga2(decoder: Decoder, pop_size: int, sampling) -> NSGA2:
    """NSGA-II on integers: SBX and PM on floats with rounding repair; duplicates are the same canonical arch."""
    return NSGA2(pop_size=pop_size, sampling=sampling,
                 crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                 mutation=PM(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                 eliminate_duplicates=DefaultDuplicateElimination(func=lambda pop: decoder.canonical(pop.get("X"))))


def initial_population(problem: SearchProblem, elites: Sequence[Arch], size: int, rng: np.random.Generator) -> np.ndarray:
    """Encodings of ``elites`` (at most half of ``size``) topped up by integer random sampling."""
    rows = [problem.plan.space.encode(a) for a in list(elites)[:size // 2]]
    fill = IntegerRandomSampling()._do(problem, size - len(rows), random_state=rng)
    return np.vstack([np.array(rows, dtype=int).reshape(len(rows), problem.n_var), fill]).astype(int)


# -- fronts and hypervolume ----------------------------------------------------------
def fronts(F: np.ndarray) -> list[np.ndarray]:
    """Non-dominated fronts (index arrays, best first) of the rows of ``F`` (minimisation)."""
    if len(F) == 0:
        return []
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    return [np.asarray(f) for f in NonDominatedSorting().do(np.asarray(F, dtype=float))]


def pareto_mask(F: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[fronts(F)[0]] = True
    return mask


@dataclass(frozen=True)
class Reference:
    """Fixed normalisation for hypervolume: ``z = (F - ideal) / (nadir - ideal)``, reference point ``scale``.

    ``hypervolume(F)`` is the volume dominated by the rows of ``F`` (min form) inside the box
    ``[ideal, ideal + scale * (nadir - ideal)]``, in normalised units (at most ``scale ** k``).
    """

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    scale: float = 1.1

    def normalise(self, F: np.ndarray) -> np.ndarray:
        ideal, nadir = np.array(self.ideal), np.array(self.nadir)
        return (np.asarray(F, dtype=float) - ideal) / (nadir - ideal)

    def hypervolume(self, F: np.ndarray) -> float:
        from pymoo.indicators.hv import HV
        Z = self.normalise(np.asarray(F, dtype=float).reshape(-1, len(self.ideal)))
        Z = Z[np.all(Z < self.scale, axis=1)]
        if len(Z) == 0:
            return 0.0
        return float(HV(ref_point=np.full(Z.shape[1], self.scale))(Z))

    def to_dict(self) -> dict:
        ref = [i + self.scale * (n - i) for i, n in zip(self.ideal, self.nadir)]
        return {"ideal": list(self.ideal), "nadir": list(self.nadir), "scale": self.scale, "ref_point": ref}

    @classmethod
    def from_points(cls, F: np.ndarray, budgets: Sequence[float | None] = ()) -> "Reference":
        """Ideal / nadir from the rows of ``F``; a column's nadir is its budget where one is given."""
        F = np.asarray(F, dtype=float)
        ideal, nadir = F.min(axis=0), F.max(axis=0)
        for j, budget in enumerate(budgets):
            if budget is not None:
                nadir[j] = budget
        span = np.where(nadir - ideal > 0, nadir - ideal, np.maximum(np.abs(ideal), 1.0) * 0.1)
        return cls(tuple(float(v) for v in ideal), tuple(float(v) for v in ideal + span))


def plan_reference(plan: SearchPlan, baseline_rows: Sequence[Mapping[str, float]]) -> Reference:
    """The run's fixed reference: ideal / nadir over the baselines, a budgeted objective's nadir = its budget."""
    budgets = [None if m.maximise else plan.budgets.get(m.name) for m in plan.objectives]
    return Reference.from_points(plan.objective_matrix(baseline_rows), budgets)


# -- choosing what to evaluate for real ------------------------------------------------
def _spread(indices: list[int], F: np.ndarray, k: int) -> list[int]:
    """``k`` of ``indices`` evenly spaced along the first objective (all of them if there are <= k)."""
    if len(indices) <= k:
        return list(indices)
    order = sorted(indices, key=lambda i: (F[i, 0], i))
    return [order[int(j)] for j in np.round(np.linspace(0, len(order) - 1, k))]


def _greedy_hypervolume(F: np.ndarray, pool: list[int], base: list[int], k: int, reference: Reference) -> list[int]:
    """Up to ``k`` of ``pool``, each adding the most hypervolume to ``base`` plus those already taken."""
    taken: list[int] = []
    current = reference.hypervolume(F[base])
    for _ in range(k):
        rest = [i for i in pool if i not in taken]
        gains = [reference.hypervolume(F[base + taken + [i]]) for i in rest]
        if not rest or max(gains) <= current + 1e-12:
            break
        best = int(np.argmax(gains))
        taken.append(rest[best])
        current = gains[best]
    return taken


def select_candidates(plan: SearchPlan, scorer: Scorer, evaluated, n_promising: int, n_uncertain: int,
                      reference: Reference | None = None) -> list[Arch]:
    """Unevaluated feasible archs among those NSGA-II scored: the promising, then the uncertain.

    Candidates are ranked into non-dominated fronts together with the feasible real points
    (which take no slot). Promising: with a ``reference``, greedily the candidates whose
    predicted values add the most hypervolume to the real front (among the best-ranked
    ``max(100, 20 * n_promising)``); the rest of the slots go to the best fronts, spread along
    the first objective. Uncertain: the largest predicted uncertainty among the next
    ``4 * n_uncertain`` best-ranked candidates, so uncertainty is explored where it matters.
    """
    cands = [a for a, (v, _) in scorer.memo.items() if a not in evaluated and plan.feasible(v)]
    real = [v for v in scorer.known.values() if plan.feasible(v)]
    F = plan.objective_matrix([scorer.memo[a][0] for a in cands] + real)
    ranks = fronts(F)
    ranked = [int(i) for front in ranks for i in front if i < len(cands)]
    picked = []
    if reference is not None and n_promising:
        base = [int(i) for i in ranks[0] if i >= len(cands)] if ranks else []
        picked = _greedy_hypervolume(F, ranked[:max(100, 20 * n_promising)], base, n_promising, reference)
    for front in ranks:
        if len(picked) >= n_promising:
            break
        new = [int(i) for i in front if i < len(cands) and i not in picked]
        picked += _spread(new, F, n_promising - len(picked))
    near = [i for i in ranked if i not in picked][:4 * n_uncertain]
    uncertain = sorted(near, key=lambda i: -scorer.memo[cands[i]][1])[:n_uncertain]
    return [cands[i] for i in picked + uncertain]


def sample_feasible(plan: SearchPlan, rng: np.random.Generator, n: int, exclude, tries: int = 50) -> list[Arch]:
    """Up to ``n`` distinct random archs outside ``exclude`` meeting the cost budgets (``tries * n`` draws at most)."""
    out: list[Arch] = []
    for _ in range(tries * n):
        if len(out) >= n:
            break
        arch = plan.space.sample(rng)
        if arch not in exclude and arch not in out and plan.cost_feasible(arch):
            out.append(arch)
    return out
