"""Budgets nothing can meet, found before anything is evaluated: probing, exact enumeration of
small spaces, and a seeded single-objective GA (pymoo) over larger ones."""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.space import SearchSpace
from .operators import variation
from .plan import SearchPlan, cost_or_inf, option_name, violation
from .problem import Decoder
from .quantities import format_quantity

ENUMERATE = 20_000  # spaces whose encoding grid is at most this large are checked exhaustively (exact)


def _grid(space: SearchSpace) -> int:
    return math.prod(int(h) + 1 for h in space.bounds()[1])


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
    crossover, mutation = variation(plan.space)
    algorithm = GA(pop_size=population, sampling=X, crossover=crossover, mutation=mutation,
                   eliminate_duplicates=DefaultDuplicateElimination(func=lambda pop: decoder.canonical(pop.get("X"))))
    minimize(problem, algorithm, ("n_gen", generations), seed=int(rng.integers(2**31)))
    return best.get("value", math.inf), best.get("arch")


def check_costs_work(plan: SearchPlan, archs: list[Arch]) -> None:
    """Raise when the cost functions fail (raise, or give no finite number >= 0) on every one of ``archs``:
    a broken cost, not a property of the archs; the message quotes the first error."""
    if not plan.costs:
        return
    errors = []
    for arch in archs:
        error = plan.exact_costs(arch)[1]
        if error is None:
            return
        errors.append(error)
    raise SupernetError(f"every evaluation of the costs failed ({len(errors)} archs tried: the smallest, the median "
                        f"and random ones); the first error: {errors[0].splitlines()[0][:300]}; fix the cost function")


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
    space = plan.space
    archs = [space.smallest(), space.median()] + [space.sample(rng) for _ in range(probes)]
    check_costs_work(plan, archs[:10])
    limited = {n: b for n, b in plan.budgets.items() if n in plan.costs}
    if not limited:
        return None
    if any(plan.cost_feasible(a) for a in archs):
        return None
    exact = _grid(space) <= ENUMERATE
    if exact:
        import itertools
        grid = [space.canonical(space.decode(x)) for x in itertools.product(*[range(h + 1) for h in space.bounds()[1]])]
        table = [cost_or_inf(plan, a) for a in grid]
        lowest = {n: min(c[n] for c in table) for n in limited}
        violations = [violation(c, limited) for c in table]
        joint, witness = min(violations), grid[int(np.argmin(violations))]
    else:
        lowest = {n: minimise_cost(plan, lambda a, n=n: cost_or_inf(plan, a)[n], rng, [space.smallest()])[0]
                  for n in limited}
        joint, witness = minimise_cost(plan, lambda a: violation(cost_or_inf(plan, a), limited), rng,
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
