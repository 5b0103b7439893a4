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
from pymoo.optimize import minimize

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
                Metric("params", False, "parameters"), Metric("latency", False, "latency (ms)"),
                Metric("loss", False, "validation loss")):
    register_metric(_metric)


DIRECTIONS = {"min": False, "max": True}


def get_metric(name: str) -> Metric:
    """The metric named ``name``; ``"name:min"`` / ``"name:max"`` declares a user metric and its direction.

    A direction given for a registered metric must agree with it (``accuracy:max``).
    """
    base, _, direction = str(name).partition(":")
    base, direction = base.strip(), direction.strip()
    if direction and direction not in DIRECTIONS:
        raise SupernetError(f"objective {name!r}: the direction after ':' must be min or max, e.g. energy:min")
    if base not in METRICS:
        if direction:
            return Metric(base, DIRECTIONS[direction], base)
        raise SupernetError(f"unknown metric {base!r}; known metrics are {sorted(METRICS)}; for your own metric "
                            f"give its direction, e.g. {base}:min or {base}:max")
    metric = METRICS[base]
    if direction and DIRECTIONS[direction] != metric.maximise:
        raise SupernetError(f"{base} is {'maximised' if metric.maximise else 'minimised'}; drop ':{direction}' "
                            "or name your own metric differently")
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

    def exact_costs(self, arch: Arch) -> tuple[dict, str | None]:
        """``({name: cost}, error)``: every cost function's value; ``error`` names the first that raised or
        returned anything but a finite number >= 0 (such an arch is a recorded failure, never a front point)."""
        out = {}
        for name, fn in self.costs.items():
            try:
                value = fn(arch)
                value = int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else float(value)
            except Exception as exc:  # noqa: BLE001  (reported as the arch's failure)
                return out, f"cost {name!r} raised {type(exc).__name__}: {exc}"
            if not math.isfinite(value) or value < 0:
                return out, f"cost {name!r} is {value!r}; costs must be finite numbers >= 0"
            out[name] = value
        return out, None

    def cost_feasible(self, arch: Arch) -> bool:
        """Valid costs meeting every budget that has an exact cost function (the others cannot be checked cheaply)."""
        costs, error = self.exact_costs(arch)
        return error is None and all(costs[n] <= b for n, b in self.budgets.items() if n in self.costs)


def make_plan(space: SearchSpace, objectives: Sequence[str], budgets: Mapping[str, float],
              costs: Mapping[str, Callable[[Arch], float]] | None = None) -> SearchPlan:
    """Validate names and budgets; raise :class:`SupernetError` with the fix."""
    objectives = list(objectives)
    metrics = tuple(get_metric(n) for n in objectives)
    names = [m.name for m in metrics]
    if len(names) < 2 or len(set(names)) != len(names):
        raise SupernetError(f"objectives must be at least 2 distinct metric names, e.g. accuracy,flops; got {objectives}")
    checked = {}
    for name, value in budgets.items():
        metric = next((m for m in metrics if m.name == name), None)
        if metric is None:
            metric = Metric(name, False, name) if name in (costs or {}) and name not in METRICS else get_metric(name)
        if metric.maximise:
            raise SupernetError(f"{name} cannot take a budget: budgets are maxima on costs, and {name} is maximised")
        checked[name] = parse_quantity(value, f"budget on {name}")
    return SearchPlan(space, metrics, checked, dict(costs or {}))


ENUMERATE = 20_000  # spaces whose encoding grid is at most this large are checked exhaustively (exact)


def option_name(key: str, names: Mapping[str, str] | None = None) -> str:
    """How the caller names a config option: ``budgets.flops`` -> ``SearchConfig.budgets['flops']`` or a CLI flag."""
    if names and key in names:
        return names[key]
    field, _, item = key.partition(".")
    return f"SearchConfig.{field}[{item!r}]" if item else f"SearchConfig.{field}"


def _grid(space: SearchSpace) -> int:
    return math.prod(int(h) + 1 for h in space.bounds()[1])


def _cost_or_inf(plan: SearchPlan, arch: Arch) -> dict:
    """Exact costs with ``inf`` for every cost of an arch whose costs are invalid."""
    costs, error = plan.exact_costs(arch)
    return {n: math.inf for n in plan.costs} if error else costs


def _violation(costs: Mapping[str, float], limits: Mapping[str, float]) -> float:
    """``sum_n max(0, cost_n / budget_n - 1)``: 0 exactly when every budget is met."""
    return float(sum(max(0.0, costs[n] / b - 1.0) for n, b in limits.items()))


def minimise_cost(plan: SearchPlan, score: Callable[[Arch], float], rng: np.random.Generator, start=(),
                  population: int = 40, generations: int = 40) -> tuple[float, Arch]:
    """Smallest ``score(arch)`` found by a seeded single-objective GA (pymoo) over the encoding, seeded with ``start``."""
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.core.problem import ElementwiseProblem
    decoder, best = Decoder(plan.space), {}
    xl, xu = plan.space.bounds()

    class Cost(ElementwiseProblem):
        def _evaluate(self, x, out, *args, **kwargs):
            arch = decoder(x)
            value = score(arch)
            if value < best.get("value", math.inf):
                best.update(value=value, arch=arch)
            out["F"] = [value if math.isfinite(value) else 1e300]

    problem = Cost(n_var=plan.space.n_var, n_obj=1, xl=xl, xu=xu, vtype=int)
    rows = [plan.space.encode(a) for a in start][:population // 2]
    fill = IntegerRandomSampling()._do(problem, population - len(rows), random_state=rng)
    X = np.vstack([np.array(rows, dtype=int).reshape(len(rows), problem.n_var), fill]).astype(int)
    algorithm = GA(pop_size=population, sampling=X, crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                   mutation=PM(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                   eliminate_duplicates=DefaultDuplicateElimination(func=lambda pop: decoder.canonical(pop.get("X"))))
    minimize(problem, algorithm, ("n_gen", generations), seed=int(rng.integers(2**31)))
    return best.get("value", math.inf), best.get("arch")


def check_reachable(plan: SearchPlan, rng: np.random.Generator, names: Mapping[str, str] | None = None,
                    probes: int = 64) -> Arch | None:
    """Raise at once unless some arch meets every budget that has a cost function.

    Returns an arch meeting them when random probing found none (a witness the search
    evaluates in round 0, so budgets met by a handful of archs are searched from one), else None.

    Probes the smallest and median archs and ``probes`` random ones; if none meets the
    budgets, each cost is minimised over the space: exactly by enumeration when the encoding
    grid has at most ``ENUMERATE`` points, else by a seeded pymoo GA started from the smallest
    arch (then the message says the value is not proven minimal). No budget that an arch
    found meets is rejected. ``names`` maps ``budgets.<metric>`` to the caller's option name.
    """
    limited = {n: b for n, b in plan.budgets.items() if n in plan.costs}
    if not limited:
        return None
    space = plan.space
    archs = [space.smallest(), space.median()] + [space.sample(rng) for _ in range(probes)]
    if any(plan.cost_feasible(a) for a in archs):
        return None
    exact = _grid(space) <= ENUMERATE
    if exact:
        import itertools
        grid = [space.canonical(space.decode(x)) for x in itertools.product(*[range(h + 1) for h in space.bounds()[1]])]
        table = [_cost_or_inf(plan, a) for a in grid]
        lowest = {n: min(c[n] for c in table) for n in limited}
        violations = [_violation(c, limited) for c in table]
        joint, witness = min(violations), grid[int(np.argmin(violations))]
    else:
        lowest = {n: minimise_cost(plan, lambda a, n=n: _cost_or_inf(plan, a)[n], rng, [space.smallest()])[0]
                  for n in limited}
        joint, witness = minimise_cost(plan, lambda a: _violation(_cost_or_inf(plan, a), limited), rng,
                                       [space.smallest()])
    if joint <= 0:
        return witness
    found = "is" if exact else "found is"
    for name, budget in limited.items():
        if lowest[name] > budget:
            proof = "" if exact else " (not proven minimal)"
            raise SupernetError(f"no arch meets the {name} budget {format_quantity(budget)}: the smallest {name} "
                                f"{found} {format_quantity(lowest[name])}{proof}; raise "
                                f"{option_name('budgets.' + name, names)} to at least that")
    together = ", ".join(f"{option_name('budgets.' + n, names)} = {format_quantity(b)}" for n, b in limited.items())
    raise SupernetError(f"no arch {'meets' if exact else 'found meets'} all budgets together ({together}); "
                        "relax one of them")


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
                values, spread = {n: self.known[arch].get(n, math.nan) for n in self.plan.measured}, 0.0
            else:
                values, spread = measured.get(arch, ({}, 0.0))
            values = {**{n: math.nan for n in self.plan.measured}, **values}
            costs = _cost_or_inf(self.plan, arch)  # an invalid cost: inf, so it never looks good
            values.update({n: float(costs[n]) for n in self.plan.used if n in self.plan.costs})
            self.memo[arch] = (values, float(spread))
        return [self.memo[a] for a in archs]


class Decoder:
    """``space.canonical(space.decode(x))`` memoised by the rounded encoding; ``canonical(X)`` = re-encoded rows."""

    def __init__(self, space: SearchSpace):
        self.space, self._memo, self._codes = space, {}, {}

    def __call__(self, x) -> Arch:
        key = np.asarray(x).round().astype(np.int64).tobytes()
        if key not in self._memo:
            self._memo[key] = self.space.canonical(self.space.decode(x))
        return self._memo[key]

    def canonical(self, X: np.ndarray) -> np.ndarray:
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
        rows = [values for values, _ in self.scorer([self.decoder(x) for x in X])]
        out["F"] = _penalised(self.plan.objective_matrix(rows))  # failed / invalid: never preferred
        if self.plan.budgets:
            out["G"] = _penalised(np.array([self.plan.constraint_row(v) for v in rows], dtype=float))


def _penalised(A: np.ndarray) -> np.ndarray:
    """NaN and infinities -> 1e300, a finite 'worst' value pymoo can sort."""
    return np.nan_to_num(np.asarray(A, dtype=float), nan=1e300, posinf=1e300, neginf=1e300)


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


    @classmethod
    def from_point(cls, point: Sequence[float]) -> "Reference":
        """A user's reference point (min form): hypervolume in the objectives' own units (unit spans, scale 1)."""
        point = np.asarray(point, dtype=float)
        return cls(tuple(float(v) for v in point - 1.0), tuple(float(v) for v in point), 1.0)


def plan_reference(plan: SearchPlan, baseline_rows: Sequence[Mapping[str, float]],
                   point: Mapping[str, float] | None = None) -> Reference:
    """The run's fixed reference: the user's ``point`` (one value per objective, natural units) when given;
    else ideal / nadir over the baselines, a budgeted objective's nadir = its budget."""
    if point:
        return Reference.from_point(plan.objective_row(reference_values(plan, point)))
    budgets = [None if m.maximise else plan.budgets.get(m.name) for m in plan.objectives]
    return Reference.from_points(plan.objective_matrix(baseline_rows), budgets)


def reference_values(plan: SearchPlan, point: Mapping[str, float]) -> dict:
    """Check a reference point: one finite number per objective (names as in the objectives, direction dropped)."""
    names = [m.name for m in plan.objectives]
    given = {str(k).partition(":")[0].strip(): v for k, v in point.items()}
    if sorted(given) != sorted(names):
        raise SupernetError(f"reference_point needs one value for each objective {names}, got {sorted(given)}")
    try:
        values = {n: float(v) for n, v in given.items()}
    except (TypeError, ValueError):
        raise SupernetError(f"reference_point values must be numbers, got {dict(point)}") from None
    if not all(math.isfinite(v) for v in values.values()):
        raise SupernetError(f"reference_point values must be finite, got {dict(point)}")
    return values


def hypervolume(front: Sequence[Mapping[str, float]], reference: Mapping[str, float]) -> float:
    """Hypervolume of ``front`` with respect to ``reference``, in the objectives' own units.

    ``reference`` maps each objective to its reference value; a name is a registered metric or
    carries its direction (``{"accuracy": 0.5, "energy:min": 3.0}``). With ``f = -v`` for a
    maximised metric and ``f = v`` otherwise (``r`` likewise), the result is the volume of
    ``{y : f(p) <= y <= r for some p in front}``; points not better than ``r`` in every objective
    add nothing. Comparable across runs that share ``reference``; divide by the hypervolume
    of a known true front to score a search against it.
    """
    metrics = [get_metric(name) for name in reference]
    ref = np.array([-v if m.maximise else v for m, v in zip(metrics, map(float, reference.values()))])
    F = np.array([[-row[m.name] if m.maximise else row[m.name] for m in metrics] for row in front], dtype=float)
    return Reference.from_point(ref).hypervolume(F.reshape(len(F), len(metrics)))


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
    cands = [a for a, (v, _) in scorer.memo.items()
             if a not in evaluated and all(math.isfinite(v[n]) for n in plan.used) and plan.feasible(v)]
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
        arch = plan.space.canonical(plan.space.sample(rng))
        if arch not in exclude and arch not in out and plan.cost_feasible(arch):
            out.append(arch)
    return out
