"""Non-dominated fronts and hypervolume with a fixed reference (so rounds and runs compare)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..core.errors import SupernetError
from .metrics import get_metric
from .plan import SearchPlan


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
