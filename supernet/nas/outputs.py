"""What a search writes about its real evaluations.

- ``evaluations.csv``: one row per real evaluation, columns ``index, round, baseline,
  status, feasible, is_pareto``, then the metrics (objectives and budgets first), then
  ``error`` and ``arch`` (compact JSON). ``status`` is ``ok``, or ``error`` / ``timeout`` /
  ``invalid`` with the text in ``error``; a failed row is never feasible nor on the front.
  ``baseline`` names the baselines an arch is (``largest``, ``smallest``, ``median``,
  joined by ``+``; empty for searched archs). ``is_pareto`` marks the feasible
  front: non-dominated among the archs that meet every budget.
- ``pareto.json``: objectives, budgets, fixed hypervolume reference, hypervolume, the
  front, the baselines and the three picks (:mod:`supernet.nas.picks`).
- ``pareto.png``: every evaluated arch, coloured by round; the front as a step line.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.space import SearchSpace
from ..io.files import atomic_file, atomic_write_json, atomic_write_text
from .pareto import Reference, pareto_mask
from .picks import PICKS, pick
from .plan import SearchPlan
from .quantities import format_quantity
from .store import Evaluation

HEAD = ["index", "round", "baseline", "status", "feasible", "is_pareto"]


REQUIRED = ["index", "round", "baseline", "feasible", "is_pareto", "arch"]  # status/error: optional (older runs)


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


def write_evaluations(path: Path, plan: SearchPlan, rows: Sequence[Evaluation], sync: bool = True) -> None:
    columns = HEAD + metric_columns(plan, rows) + ["error", "arch"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for rec, e in zip(records(plan, rows), rows):
        writer.writerow({**{k: rec[k] for k in columns[:-1] if k in rec}, "arch": e.arch.to_json()})
    atomic_write_text(path, buf.getvalue(), sync)


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
                 hypervolume: float, plot: bool = True, split: str | None = None, sync: bool = True) -> dict:
    """Write ``pareto.json`` (and ``pareto.png`` when ``plot``; fsynced unless ``sync`` is False); returns the
    summary. ``split`` names the data split the evaluated metrics were measured on (axis labels)."""
    summary = summarise(plan, rows, reference, hypervolume)
    atomic_write_json(Path(run_dir) / "pareto.json", summary, sync)
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
    from ..io.files import read_json
    from .plan import make_plan
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
