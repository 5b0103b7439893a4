"""What a search is: objectives by name, budgets (``value <= max``) and exact cost functions.

A :class:`SearchPlan` says what is searched: objectives (``accuracy`` maximised; ``flops``,
``params``, ``latency`` minimised) and budgets. A metric with a cost function (``plan.costs``) is
exact and never predicted; every other metric used is *measured* by the evaluator and predicted
during NSGA-II. Everything works in minimisation form: ``F = -value`` for a maximised metric,
``F = value`` otherwise, and a budget is the inequality ``G = value / max - 1 <= 0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.space import SearchSpace
from .metrics import METRICS, Metric, get_metric
from .quantities import parse_quantity


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
        """``objective_row`` of every row, ``(len(rows), len(objectives))``, in one array operation."""
        names = [m.name for m in self.objectives]
        sign = np.array([-1.0 if m.maximise else 1.0 for m in self.objectives])
        return np.array([[v[n] for n in names] for v in rows], dtype=float).reshape(len(rows), len(names)) * sign

    def constraint_row(self, values: Mapping[str, float]) -> np.ndarray:
        return np.array([values[n] / b - 1.0 for n, b in self.budgets.items()], dtype=float)

    def constraint_matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """``constraint_row`` of every row, ``(len(rows), len(budgets))``."""
        values = np.array([[v[n] for n in self.budgets] for v in rows], dtype=float).reshape(len(rows), len(self.budgets))
        return values / np.array(list(self.budgets.values()), dtype=float) - 1.0

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


def option_name(key: str, names: Mapping[str, str] | None = None) -> str:
    """How the caller names a config option: ``budgets.flops`` -> ``SearchConfig.budgets['flops']`` or a CLI flag."""
    if names and key in names:
        return names[key]
    field, _, item = key.partition(".")
    return f"SearchConfig.{field}[{item!r}]" if item else f"SearchConfig.{field}"


COST_MEMO = 200_000  # archs whose exact costs a plan remembers (the cost functions are pure)


def cost_or_inf(plan: SearchPlan, arch: Arch) -> dict:
    """Exact costs with ``inf`` for every cost of an arch whose costs are invalid (memoised per plan and arch)."""
    memo = plan.__dict__.setdefault("_cost_memo", {})
    if arch not in memo:
        if len(memo) >= COST_MEMO:
            memo.clear()
        costs, error = plan.exact_costs(arch)
        memo[arch] = {n: math.inf for n in plan.costs} if error else costs
    return memo[arch]


def violation(costs: Mapping[str, float], limits: Mapping[str, float]) -> float:
    """``sum_n max(0, cost_n / budget_n - 1)``: 0 exactly when every budget is met."""
    return float(sum(max(0.0, costs[n] / b - 1.0) for n, b in limits.items()))
