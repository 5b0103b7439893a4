"""The three picks from a search: ``PICKS``, the one list every command takes, and the rule of each."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..core.errors import SupernetError
from .plan import SearchPlan

PICKS = ("best-accuracy", "knee", "max-accuracy-under-budget")


# -- picks -----------------------------------------------------------------------------
def _accuracy_first(rows: list[dict], plan: SearchPlan) -> dict:
    """The best row by the first quality objective (a metric's declared kind, :mod:`supernet.nas.metrics`):
    accuracy (highest), or the task's score that replaces it (e.g. validation ``loss`` of a language
    model, lowest); ties to the smaller first cost objective."""
    rows = [r for r in rows if r.get("status", "ok") == "ok"]
    quality = next((m for m in plan.objectives if m.quality), None)
    if quality is None or not rows:
        raise SupernetError("this pick needs a search with accuracy (or loss) among its objectives and at least "
                            "one candidate")
    sign = 1.0 if quality.maximise else -1.0
    cost = next((m.name for m in plan.objectives if not m.quality), None)
    return max(rows, key=lambda r: (sign * r[quality.name], -(r[cost] if cost else 0), -r["index"]))


def pick(plan: SearchPlan, recs: list[dict], how: str, budgets: Mapping[str, float] | None = None) -> dict:
    """One record of a search.

    - ``best-accuracy``: the most accurate arch evaluated, budgets ignored (e.g. the largest); for a
      language model, the lowest validation loss.
    - ``max-accuracy-under-budget``: the most accurate (lowest-loss) arch meeting ``budgets`` (default:
      the search's).
    - ``knee``: on the feasible front, the point nearest the ideal after scaling each objective
      to [0, 1] over the front.
    Ties go to the smaller first minimised objective, then to the earlier evaluation.
    """
    if how == "best-accuracy":
        return _accuracy_first(recs, plan)
    if how == "max-accuracy-under-budget":
        limits = plan.budgets if budgets is None else budgets
        ok = [r for r in recs if r.get("status", "ok") == "ok" and all(r[n] <= b for n, b in limits.items())]
        if not ok:
            raise SupernetError(f"no evaluated arch meets the budgets {dict(limits)}; relax them or pick best-accuracy")
        return _accuracy_first(ok, plan)
    if how == "knee":
        front = [r for r in recs if r["is_pareto"]]
        if not front:
            raise SupernetError("the search has no feasible front to pick a knee from")
        Z = plan.objective_matrix(front)
        span = np.where(np.ptp(Z, axis=0) > 0, np.ptp(Z, axis=0), 1.0)
        dist = np.linalg.norm((Z - Z.min(axis=0)) / span, axis=1)
        return front[int(np.argmin(dist))]
    raise SupernetError(f"unknown pick {how!r}; choose one of {list(PICKS)}")
