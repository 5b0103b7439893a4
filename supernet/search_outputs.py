"""Real evaluations of a search and what is written about them.

:class:`EvaluationStore` holds every real evaluation in order and never evaluates an arch
twice. The run folder gets:

- ``evaluations.csv``: one row per real evaluation, columns ``index, round, baseline,
  status, feasible, is_pareto``, then the metrics (objectives and budgets first), then
  ``error`` and ``arch`` (compact JSON). ``status`` is ``ok``, or ``error`` / ``timeout`` /
  ``invalid`` (NaN or missing metric, NaN or negative cost) with the text in ``error``; a
  failed row is never feasible nor on the front, and its arch is never proposed again.
  ``baseline`` names the baselines an arch is (``largest``, ``smallest``, ``median``,
  joined by ``+``; empty for searched archs). ``is_pareto`` marks the feasible
  front: non-dominated among the archs that meet every budget.
- ``pareto.json``: objectives, budgets, fixed hypervolume reference, hypervolume, the
  front, the baselines and the three picks (see :func:`pick`).
- ``pareto.png``: every evaluated arch, coloured by round; the front as a step line.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .arch import Arch, SearchSpace
from .errors import SupernetError
from .runs import atomic_file, atomic_write_json, atomic_write_text
from .search_problem import Reference, SearchPlan, format_quantity, pareto_mask

HEAD = ["index", "round", "baseline", "status", "feasible", "is_pareto"]
REQUIRED = ["index", "round", "baseline", "feasible", "is_pareto", "arch"]  # status/error: optional (older runs)
PICKS = ("best-accuracy", "knee", "max-accuracy-under-budget")


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

    ``evaluator.evaluate_many(archs)`` (see :mod:`supernet.evaluators`) is the only call that
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
            stream = getattr(self.evaluator, "evaluate_iter", None)
            results = stream(archs) if stream else self.evaluator.evaluate_many(archs)
            for arch, result in zip(archs, results):
                self._record(arch, round_, labels[arch], result)
                done += 1
        except (TooManyFailures, BudgetSpent):
            raise
        except Exception as exc:  # noqa: BLE001  (an evaluator that raises fails its batch, not the search)
            from .evaluators import Failure, describe
            failure = Failure("error", f"evaluate_many raised {describe(exc)}")
            for arch in archs[done:]:
                self._record(arch, round_, labels[arch], failure)
            return
        if done < len(archs):
            from .evaluators import Failure
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
        from .evaluators import Failure
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


# -- records and the CSV ---------------------------------------------------------------
def annotate(plan: SearchPlan, rows: Sequence[Evaluation]) -> tuple[np.ndarray, np.ndarray]:
    """``(feasible, is_pareto)`` boolean arrays; the front is non-dominated among the feasible rows."""
    feasible = np.array([e.ok and plan.feasible(e.metrics) for e in rows], dtype=bool)
    pareto = np.zeros(len(rows), dtype=bool)
    idx = np.flatnonzero(feasible)
    pareto[idx] = pareto_mask(plan.objective_matrix([rows[i].metrics for i in idx]))
    return feasible, pareto


def records(plan: SearchPlan, rows: Sequence[Evaluation]) -> list[dict]:
    """One flat JSON-able dict per evaluation: the CSV columns, ``arch`` as a dict."""
    feasible, pareto = annotate(plan, rows)
    return [{"index": e.index, "round": e.round, "baseline": e.baseline, "status": e.status, "feasible": bool(f),
             "is_pareto": bool(p), **e.metrics, "error": e.error, "arch": e.arch.to_dict()}
            for e, f, p in zip(rows, feasible, pareto)]


def metric_columns(plan: SearchPlan, rows: Sequence[Evaluation]) -> list[str]:
    seen = {k for e in rows for k in e.metrics}
    return [n for n in plan.used if n in seen] + sorted(seen - set(plan.used))


def write_evaluations(path: Path, plan: SearchPlan, rows: Sequence[Evaluation]) -> None:
    columns = HEAD + metric_columns(plan, rows) + ["error", "arch"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for rec, e in zip(records(plan, rows), rows):
        writer.writerow({**{k: rec[k] for k in columns[:-1] if k in rec}, "arch": e.arch.to_json()})
    atomic_write_text(path, buf.getvalue())


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_evaluations(path: Path, space: SearchSpace | None = None) -> list[Evaluation]:
    """Rows of ``evaluations.csv``; archs validated by ``space`` when given."""
    line = 1
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise SupernetError(f"{str(path)!r} lacks column {missing[0]!r}; is it a search's evaluations.csv?")
            rows = []
            for line, row in enumerate(reader, start=2):
                arch = Arch.from_json(row["arch"])
                metrics = {k: _number(v) for k, v in row.items()
                           if k not in HEAD + ["error", "arch"] and v not in ("", None)}
                rows.append(Evaluation(int(row["index"]), space.make(arch) if space else arch, int(row["round"]),
                                       metrics, row["baseline"], row.get("status") or "ok", row.get("error") or ""))
    except FileNotFoundError:
        raise SupernetError(f"{str(path)!r} does not exist; is the folder a search run?") from None
    except (ValueError, KeyError) as exc:
        raise SupernetError(f"{str(path)!r} line {line} is malformed ({exc})") from None
    return rows


# -- picks -----------------------------------------------------------------------------
COSTS = ("flops", "params", "latency")


def _accuracy_first(rows: list[dict], plan: SearchPlan) -> dict:
    """The best row by the quality objective: accuracy (highest), or the task's score that replaces it
    (e.g. validation ``loss`` of a language model, lowest); ties to the smaller first cost."""
    rows = [r for r in rows if r.get("status", "ok") == "ok"]
    quality = next((m for m in plan.objectives if m.name not in COSTS), None)
    if quality is None or not rows:
        raise SupernetError("this pick needs a search with accuracy (or loss) among its objectives and at least "
                            "one candidate")
    sign = 1.0 if quality.maximise else -1.0
    cost = next((m.name for m in plan.objectives if m.name in COSTS), None)
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


# -- pareto.json and pareto.png --------------------------------------------------------
def summarise(plan: SearchPlan, rows: Sequence[Evaluation], reference: Reference | None, hypervolume: float) -> dict:
    """The content of ``pareto.json``: objectives, budgets, reference, hypervolume, front, baselines, picks."""
    recs = records(plan, rows)
    picks = {}
    for how in PICKS:
        try:
            picks[how] = pick(plan, recs, how)
        except SupernetError:
            picks[how] = None
    front = sorted((r for r in recs if r["is_pareto"]), key=lambda r: tuple(plan.objective_row(r)))
    ref = reference.to_dict() if reference else None
    if ref:  # the reference point in each objective's own units and direction
        ref["point"] = {m.name: (-v if m.maximise else v) for m, v in zip(plan.objectives, ref["ref_point"])}
    return {"objectives": [m.name for m in plan.objectives], "budgets": plan.budgets, "evaluations": len(recs),
            "failures": sum(r["status"] != "ok" for r in recs),
            "reference": ref, "hypervolume": hypervolume,
            "front": front, "baselines": [r for r in recs if r["baseline"]], "picks": picks}


def write_pareto(run_dir: Path, plan: SearchPlan, rows: Sequence[Evaluation], reference: Reference | None,
                 hypervolume: float, plot: bool = True, split: str | None = None) -> dict:
    """Write ``pareto.json`` (and ``pareto.png`` when ``plot``); returns the summary.

    ``split`` names the data split the evaluated metrics were measured on (axis labels)."""
    summary = summarise(plan, rows, reference, hypervolume)
    atomic_write_json(Path(run_dir) / "pareto.json", summary)
    if plot and rows:
        plot_front(Path(run_dir) / "pareto.png", plan, records(plan, rows), summary["picks"], split)
    return summary


def _axes(plan: SearchPlan) -> tuple[str, str]:
    """x: the first minimised objective; y: the first maximised one (else the first two objectives)."""
    low = [m.name for m in plan.objectives if not m.maximise]
    high = [m.name for m in plan.objectives if m.maximise]
    names = [m.name for m in plan.objectives]
    return (low[0], high[0]) if low and high else (names[0], names[1])


def plot_front(path: Path, plan: SearchPlan, recs: list[dict], picks: Mapping[str, dict | None] | None = None,
               split: str | None = None) -> None:
    """Scatter of every evaluation coloured by round, the feasible front, baselines, picks and budgets
    (Agg, atomic). Axes of evaluated (not counted) metrics name the ``split`` they were measured on."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    xname, yname = _axes(plan)
    recs = [r for r in recs if r.get("status", "ok") == "ok"]  # failures have no point to draw
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x, y = np.array([r[xname] for r in recs], float), np.array([r[yname] for r in recs], float)
    dots = ax.scatter(x, y, c=[r["round"] for r in recs], cmap="viridis", s=18, alpha=0.8)
    from matplotlib.ticker import MaxNLocator
    fig.colorbar(dots, ax=ax, label="round").ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    front = sorted((r for r in recs if r["is_pareto"]), key=lambda r: r[xname])
    if front:
        ax.step([r[xname] for r in front], [r[yname] for r in front], where="post", color="black", lw=1, label="front")
    for r in recs:
        if r["baseline"]:
            ax.annotate(r["baseline"], (r[xname], r[yname]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    for (how, r), marker in zip(((h, r) for h, r in (picks or {}).items() if r), "*Dv^"):
        ax.scatter([r[xname]], [r[yname]], marker=marker, s=140, facecolors="none", edgecolors="red", lw=1.5,
                   label=f"pick: {how}", zorder=3)
    if xname in plan.budgets:
        ax.axvline(plan.budgets[xname], color="red", ls="--", lw=1, label=f"budget {format_quantity(plan.budgets[xname])}")
    ax.set_xlabel(_axis_label(plan, xname, split))
    ax.set_ylabel(_axis_label(plan, yname, split))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _axis_label(plan: SearchPlan, name: str, split: str | None) -> str:
    label = {m.name: m.label for m in plan.objectives}.get(name, name)
    measured = split and name not in plan.costs
    return f"{label}, {'validation' if split == 'val' else split} split" if measured else label


def pick_from_search(run_dir: str | os.PathLike, how: str, budgets: Mapping[str, float] | None = None) -> tuple[dict, dict]:
    """``(record, config)`` of the arch picked by ``how`` (see :func:`pick`) from a search run folder.

    ``record["arch"]`` is the arch as a dict; ``config["source"]`` names the checkpoint it came from, if any.
    """
    from .runs import read_json
    from .search_problem import make_plan
    config = read_json(Path(run_dir) / "config.json", "search config")
    if "search" not in config:
        raise SupernetError(f"{str(run_dir)!r} is not a search run (its config.json has no 'search'); "
                            "pass the folder written by `supernet search`")
    saved = config["search"]
    plan = make_plan(None, saved["objectives"], saved.get("budgets", {}))
    rows = read_evaluations(Path(run_dir) / "evaluations.csv")
    if not rows:
        raise SupernetError(f"the search in {str(run_dir)!r} has no evaluations yet; resume it first")
    return pick(plan, records(plan, rows), how, budgets), config
