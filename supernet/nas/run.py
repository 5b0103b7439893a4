"""One search's state: the store of real evaluations and everything written about them (CSV, log,
state, progress bar), its fixed hypervolume reference, and the result it returns."""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from tqdm import tqdm

from ..core.arch import Arch
from ..evaluation.evaluators import as_evaluator
from ..io.files import atomic_write_json, read_json, sync_file
from ..io.runs import RunLog
from .search_config import SearchConfig, SearchResult, SearchWarning
from .outputs import annotate, read_evaluations, records, summarise, write_evaluations, write_pareto
from .pareto import plan_reference
from . import pace
from .plan import SearchPlan
from .store import EvaluationStore

CSV, STATE = "evaluations.csv", "state.json"
WRITE_EVERY = 1.0  # seconds between rewrites of evaluations.csv during a batch of evaluations


# -- one search ------------------------------------------------------------------------
class SearchRun:
    """The store of real evaluations plus everything written about them (CSV, log, state, bar)."""

    def __init__(self, plan: SearchPlan, cfg: SearchConfig, evaluator, run_dir: Path | None, progress: bool,
                 tensorboard: bool, predictor_factory: Callable, witness: Arch | None = None):
        self.plan, self.cfg, self.run_dir, self.factory = plan, cfg, run_dir, predictor_factory
        self.witness = witness  # an arch meeting the cost budgets that random sampling could not find
        rows = read_evaluations(run_dir / CSV, plan.space) if run_dir and (run_dir / CSV).exists() else []
        state = read_json(run_dir / STATE, "search state") if run_dir and (run_dir / STATE).exists() else {}
        self.next_round = int(state.get("next_round", 0))
        self.cheap: bool | None = cfg.cheap if cfg.cheap is not None else state.get("cheap")  # (nas.pace)
        self.choosers: dict = {}  # metric -> (round, predictor) of the last round that chose its model (nas.pace)
        self.bar = tqdm(total=cfg.evaluations, initial=len(rows), desc="search", unit="eval",
                        disable=not progress or None)
        self.store = EvaluationStore(plan, as_evaluator(evaluator, cfg.eval_timeout), cfg.evaluations, rows,
                                     self._on_new, cfg.max_failures)
        self.log = RunLog(run_dir, tensorboard) if run_dir else None
        self._written, self._written_rows = time.monotonic(), len(rows)
        self._reference = None
        self.split = None  # the data split evaluated metrics come from, when the caller says (source["split"])
        self.chosen: dict[str, str] = {}

    def _on_new(self, ev) -> None:
        """Tick the bar; rewrite the CSV at most every ``WRITE_EVERY`` seconds (and after every batch, see
        :meth:`flush`), so cheap evaluations do not rewrite it once each while slow ones are each saved."""
        self.bar.update(1)
        if self.run_dir and time.monotonic() - self._written >= WRITE_EVERY:
            self.flush()

    def flush(self, sync: bool = True) -> None:
        """Write ``evaluations.csv`` now (every result so far; fsynced unless ``sync`` is False)."""
        if self.run_dir and self._written_rows != len(self.store.rows):
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows, sync)
            self._written_rows = len(self.store.rows)
        self._written = time.monotonic()

    def evaluate_round(self, todo: list[tuple[Arch, str]], r: int) -> list:
        """Evaluate round ``r``'s ``(arch, baseline label)`` pairs for real; the distinct evaluations, in order.

        Times the new evaluations of the first round that has some and decides once whether evaluations are
        cheap (:func:`supernet.nas.pace.is_cheap`)."""
        before, start = len(self.store), pace.clock()
        done = self.store.evaluate_many([a for a, _ in todo], r, [label for _, label in todo])
        if self.cheap is None:
            self.cheap = pace.is_cheap(pace.clock() - start, len(self.store) - before)
        return list({e.index: e for e in done}.values())

    def baselines(self) -> list[tuple[Arch, str]]:
        """(arch, names) of the smallest, largest and median archs that meet the budgets with a cost
        function (an arch that breaks one could never be picked), and the budget check's ``witness``, if it
        needed one; equal archs share one entry."""
        names: dict[Arch, list[str]] = {}
        for name in ("smallest", "largest", "median"):
            arch = self.plan.space.canonical(getattr(self.plan.space, name)())
            if not breaks_budget(self.plan, arch):
                names.setdefault(arch, []).append(name)
        if self.witness is not None:
            names.setdefault(self.witness, []).append("witness")
        return [(arch, "+".join(n)) for arch, n in names.items()]

    @property
    def reference(self):
        """Fixed once known: the user's point, else from the ok baselines (else the ok rows of round 0)."""
        if self._reference is None:
            ok = [e for e in self.store.rows if e.ok and e.round == 0]
            base = [e.metrics for e in ok if e.baseline] or [e.metrics for e in ok]
            if self.cfg.reference_point or base:
                self._reference = plan_reference(self.plan, base, self.cfg.reference_point)
        return self._reference

    def front_rows(self) -> list:
        _, pareto = annotate(self.plan, self.store.rows)
        return [e for e, p in zip(self.store.rows, pareto) if p]

    def hypervolume(self) -> float:
        front = [e.metrics for e in self.front_rows()]
        return self.reference.hypervolume(self.plan.objective_matrix(front)) if self.reference and front else 0.0

    def end_round(self, r: int, new: list, predicted: Mapping[Arch, Mapping[str, float]] | None = None) -> None:
        """Log round ``r`` (hypervolume, failures, predictor tau / MAPE on the new real points); skipped when replayed.
        A cheap search (:mod:`.pace`) writes a round's files without fsync: atomic still, a crash of the
        process loses nothing, and ``finish`` syncs the last ones."""
        if r < self.next_round:
            return
        sync = not self.cheap
        self.flush(sync)
        record = {"round": r, "evaluations": len(self.store), "new": len(new), "failures": self.store.failures,
                  "front_size": len(self.front_rows()), "hypervolume": self.hypervolume(),
                  **_predictor_scores(self.plan, [e for e in new if e.ok], predicted or {}),
                  **{f"predictor/{n}": c for n, c in self.chosen.items()}}
        if self.log:
            scalars = {f"search/{k}": v for k, v in record.items()
                       if k != "round" and isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.log.log(record, r, scalars)
            write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, record["hypervolume"], plot=False,
                         sync=sync)
            cheap = {} if self.cheap is None else {"cheap": self.cheap}
            atomic_write_json(self.run_dir / STATE, {"next_round": r + 1, **cheap}, sync)
        self.next_round = r + 1

    def finish(self) -> SearchResult:
        """Write the final CSV, ``pareto.json`` and ``pareto.png``; warn about unmet budgets; return the result."""
        hv = self.hypervolume()
        notes = _unmet_budgets(self.plan, self.store.rows) + self._stopped_early()
        for note in notes:
            warnings.warn(note, SearchWarning, stacklevel=3)
        if self.run_dir:
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows)
            summary = write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, hv, split=self.split)
            sync_file(self.run_dir / STATE)  # a cheap search's last round wrote it without fsync
        else:
            summary = summarise(self.plan, self.store.rows, self.reference, hv)
        recs = records(self.plan, self.store.rows)
        return SearchResult(self.run_dir, recs, summary["front"], hv, summary["reference"], summary["picks"],
                            self.store.failures, notes)

    def _stopped_early(self) -> list[str]:
        """A note when the search ended before its budget of evaluations: nothing new was left to propose."""
        done, budget = len(self.store), self.cfg.evaluations
        if done >= budget or self.store.failures > (self.cfg.max_failures or 0):
            return []
        limit = " that meets the budgets" if self.plan.budgets else ""
        return [f"the search stopped after {done} of {budget} evaluations: it found no other arch{limit} to evaluate "
                f"(the space{' under these budgets' if limit else ''} holds about {done} distinct archs)"]

    def close(self) -> None:
        self.bar.close()
        if self.log:
            self.log.close()


def breaks_budget(plan: SearchPlan, arch: Arch) -> bool:
    """True when ``arch``'s exact costs are valid and one exceeds its budget (an invalid cost is evaluated and
    recorded as a failure, as before)."""
    costs, error = plan.exact_costs(arch)
    return error is None and any(costs[n] > b for n, b in plan.budgets.items() if n in plan.costs)


def _unmet_budgets(plan: SearchPlan, rows: list) -> list[str]:
    """A note when real results exist but none meets every budget, naming the closest arch."""
    ok = [e for e in rows if e.ok]
    if not plan.budgets or not ok or any(plan.feasible(e.metrics) for e in ok):
        return []
    excess = lambda e: max(e.metrics[n] / b - 1 for n, b in plan.budgets.items())  # noqa: E731
    best = min(ok, key=excess)
    over = ", ".join(f"{n}={best.metrics[n]:.4g} (budget {b:.4g})" for n, b in plan.budgets.items())
    return [f"no evaluated arch meets the budgets; the closest is evaluation {best.index} {best.arch.to_json()} "
            f"with {over}"]


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _predictor_scores(plan: SearchPlan, new: list, predicted: Mapping[Arch, Mapping[str, float]]) -> dict:
    """Kendall tau and MAPE (%) of the round's predictions on its new real points (None where undefined).

    MAPE = 100 / n * sum |pred - true| / |true| over points with true != 0.
    """
    from scipy.stats import kendalltau
    out = {}
    for name in plan.measured:
        pairs = [(e.metrics[name], predicted[e.arch][name]) for e in new if e.arch in predicted]
        true, pred = np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)
        ok = true != 0
        tau = float(kendalltau(true, pred).statistic) if len(pairs) >= 2 else None
        out[f"tau/{name}"] = _finite(tau)
        out[f"mape/{name}"] = _finite(float(100 * np.mean(np.abs(pred[ok] - true[ok]) / np.abs(true[ok])))) \
            if ok.any() else None
    return out
