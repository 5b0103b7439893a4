"""Real evaluations of a search: every one in order, failures included; an arch is evaluated at most once.

:class:`EvaluationStore` calls the evaluator (:mod:`supernet.evaluation.evaluators`) and records
each result, or its failure (``status``: ``error``, ``timeout`` or ``invalid``: NaN or missing
metric, NaN or negative cost; the text in ``error``); a failed arch is never proposed again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..core.arch import Arch
from ..core.contract import results_of
from ..core.errors import SupernetError
from .plan import SearchPlan


class BudgetSpent(Exception):
    """Raised by :meth:`EvaluationStore.evaluate_many` when new archs remain once the budget is spent."""


class TooManyFailures(SupernetError):
    """More evaluations failed than ``max_failures`` allows; ``result`` (set by the search) holds what was found."""

    result = None


@dataclass
class Evaluation:
    index: int
    arch: Arch
    round: int
    metrics: dict
    baseline: str = ""
    status: str = "ok"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class EvaluationStore:
    """Every real evaluation in order, failures included; an arch is evaluated at most once.

    ``evaluator.evaluate_many(archs)`` (see :mod:`supernet.evaluation.evaluators`) is the only call that
    evaluates for real. A result is valid when it is a mapping with a finite number for every
    measured metric of the plan and every exact cost is a finite number >= 0; otherwise it is
    recorded with ``status`` ``invalid`` (or the evaluator's ``error`` / ``timeout``) and the
    error text, and the arch is never proposed again. More than ``max_failures`` failures
    raise :class:`TooManyFailures` after the failing row is recorded. ``on_new(evaluation)``
    runs after each new evaluation (write the CSV, tick the bar). Archs are keyed by
    ``space.canonical``, so equivalent archs share one evaluation.
    """

    def __init__(self, plan: SearchPlan, evaluator, limit: int, rows: Sequence[Evaluation] = (),
                 on_new: Callable[[Evaluation], None] | None = None, max_failures: int | None = None):
        self.plan, self.evaluator, self.limit, self.on_new = plan, evaluator, limit, on_new
        self.max_failures = max_failures
        self.rows: list[Evaluation] = list(rows)
        self.by_arch = {e.arch: e for e in self.rows}

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, arch) -> bool:
        return self.plan.space.canonical(arch) in self.by_arch

    @property
    def failures(self) -> int:
        return sum(not e.ok for e in self.rows)

    def ok_rows(self) -> list[Evaluation]:
        return [e for e in self.rows if e.ok]

    def before(self, round_: int) -> list[Evaluation]:
        """Evaluations of rounds before ``round_``, failures included."""
        return [e for e in self.rows if e.round < round_]

    def evaluate(self, arch: Arch, round_: int, baseline: str = "") -> Evaluation:
        return self.evaluate_many([arch], round_, [baseline])[0]

    def evaluate_many(self, archs: Sequence[Arch], round_: int, labels: Sequence[str] | None = None) -> list[Evaluation]:
        """The evaluation of every arch (cached or new, in order); new ones in one ``evaluate_many`` call.

        Raises :class:`BudgetSpent` after evaluating what fits when new archs exceed the budget.
        """
        canon = [self.plan.space.canonical(a) for a in archs]
        todo: dict[Arch, str] = {}
        for arch, label in zip(canon, labels or [""] * len(canon)):
            if arch not in self.by_arch and arch not in todo:
                todo[arch] = label
        room = max(self.limit - len(self.rows), 0)
        if todo and room:
            self._run(list(todo)[:room], round_, todo)
        if len(todo) > room:
            raise BudgetSpent
        return [self.by_arch[a] for a in canon]

    def _run(self, archs: list[Arch], round_: int, labels: Mapping[Arch, str]) -> None:
        done = 0
        try:
            results = results_of(self.evaluator, archs)  # its evaluate_iter, else evaluate_many's
            for arch, result in zip(archs, results):
                self._record(arch, round_, labels[arch], result)
                done += 1
        except (TooManyFailures, BudgetSpent):
            raise
        except Exception as exc:  # noqa: BLE001  (an evaluator that raises fails its batch, not the search)
            from ..evaluation.evaluators import Failure, describe
            failure = Failure("error", f"evaluate_many raised {describe(exc)}")
            for arch in archs[done:]:
                self._record(arch, round_, labels[arch], failure)
            return
        if done < len(archs):
            from ..evaluation.evaluators import Failure
            for arch in archs[done:]:
                self._record(arch, round_, labels[arch], Failure(
                    "invalid", f"evaluate_many returned {done} results for {len(archs)} archs"))

    def _record(self, arch: Arch, round_: int, label: str, result) -> None:
        metrics, status, error = self._check(arch, result)
        ev = Evaluation(len(self.rows), arch, round_, metrics, label, status, error)
        self.rows.append(ev)
        self.by_arch[arch] = ev
        if self.on_new:
            self.on_new(ev)
        if not ev.ok and self.max_failures is not None and self.failures > self.max_failures:
            raise TooManyFailures(f"{self.failures} of {len(self.rows)} evaluations failed, more than max_failures="
                                  f"{self.max_failures}; the last: {arch.to_json()} {status}: {error}; every result "
                                  "so far is kept (evaluations.csv, or the error's .result)")

    def _check(self, arch: Arch, result) -> tuple[dict, str, str]:
        """``(metrics, status, error)`` of one evaluator result plus the exact costs of ``arch``."""
        from ..evaluation.evaluators import Failure
        if isinstance(result, Failure):
            return {}, result.status, result.error
        if not isinstance(result, Mapping):
            return {}, "invalid", f"the evaluator returned {type(result).__name__}, not a dict of metrics"
        metrics = {}
        for key, value in result.items():
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
                metrics[str(key)] = int(value) if isinstance(value, (int, np.integer)) else float(value)
        for name in self.plan.measured:
            value = metrics.get(name, result.get(name))
            if not isinstance(metrics.get(name), (int, float)) or not math.isfinite(metrics[name]):
                return metrics, "invalid", f"no finite {name!r} in the evaluator's result (got {value!r})"
        costs, error = self.plan.exact_costs(arch)
        metrics.update(costs)
        return metrics, ("invalid" if error else "ok"), error or ""
